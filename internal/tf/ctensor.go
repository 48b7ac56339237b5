package tf

// #include <stdlib.h>
// #include "tensorflow/c/c_api.h"
import "C"

import (
	"fmt"
	"reflect"
	"runtime"
	"sync/atomic"
	"unsafe"

	tfb "github.com/galeone/tensorflow/tensorflow/go"
)

// The bindings free a tensor only from its finalizer. To free it deterministically we
// read its C pointer, the first field of tfb.Tensor:
//
//	type Tensor struct {
//		c     *C.TF_Tensor
//		shape []int64
//	}
//
// layoutErr is non-nil when the bindings' struct does not look like that; freeTensor
// then leaves the tensor to its finalizer rather than guess.
var layoutErr = checkLayout()

// freedTensors counts tensors freed by freeTensor; tests read it.
var freedTensors atomic.Int64

func checkLayout() error {
	typ := reflect.TypeFor[tfb.Tensor]()
	want := reflect.TypeFor[*C.TF_Tensor]()
	if typ.NumField() != 2 || unsafe.Sizeof(tfb.Tensor{}) != unsafe.Sizeof(uintptr(0))+unsafe.Sizeof([]int64(nil)) {
		return fmt.Errorf("tf: bindings' Tensor has %d fields, %d bytes; want {c *C.TF_Tensor; shape []int64}",
			typ.NumField(), unsafe.Sizeof(tfb.Tensor{}))
	}
	f := typ.Field(0)
	if f.Name != "c" || f.Offset != 0 || f.Type.Kind() != reflect.Pointer || f.Type.Elem().Name() != want.Elem().Name() {
		return fmt.Errorf("tf: bindings' Tensor starts with %s %s; want c %s", f.Name, f.Type, want)
	}
	return nil
}

// cTensor returns the C tensor behind t (nil once freed).
func cTensor(t *tfb.Tensor) *C.TF_Tensor {
	return *(**C.TF_Tensor)(unsafe.Pointer(t))
}

// freeTensor deletes t's C tensor now and drops its finalizer. t must not be used
// afterwards. It is a no-op for nil, for an already freed tensor and, when the
// bindings' layout is not the expected one, for every tensor.
func freeTensor(t *tfb.Tensor) {
	if t == nil || layoutErr != nil {
		return
	}
	p := (**C.TF_Tensor)(unsafe.Pointer(t))
	if *p == nil {
		return
	}
	runtime.SetFinalizer(t, nil)
	C.TF_DeleteTensor(*p)
	*p = nil
	freedTensors.Add(1)
}

func freeTensors(ts []*tfb.Tensor) {
	for _, t := range ts {
		freeTensor(t)
	}
}

// tensorBytes returns a view of t's C buffer, valid until t is freed; nil when t has
// no buffer (TensorFlow could not allocate it).
func tensorBytes(t *tfb.Tensor) []byte {
	c := cTensor(t)
	if c == nil {
		return nil
	}
	n := int(C.TF_TensorByteSize(c))
	data := C.TF_TensorData(c)
	if n == 0 || data == nil {
		return nil
	}
	return unsafe.Slice((*byte)(data), n)
}

// cTensorInfo reads dtype and rank straight from t's C tensor; the layout test uses it
// to prove that cTensor finds the right pointer.
func cTensorInfo(t *tfb.Tensor) (dtype tfb.DataType, rank int) {
	c := cTensor(t)
	return tfb.DataType(C.TF_TensorType(c)), int(C.TF_NumDims(c))
}

// invalidArgument reports whether err is a TensorFlow status error with code
// INVALID_ARGUMENT. The bindings hide the code: their *statusError is a struct whose
// only field is the *C.TF_Status, which we read through unsafe after checking the type.
func invalidArgument(err error) bool {
	v := reflect.ValueOf(err)
	if !v.IsValid() || v.Kind() != reflect.Pointer || v.IsNil() || v.Type().String() != "*tensorflow.statusError" {
		return false
	}
	e := v.Type().Elem()
	if e.Kind() != reflect.Struct || e.NumField() != 1 || e.Field(0).Type.Kind() != reflect.Pointer ||
		e.Field(0).Type.Elem().Name() != reflect.TypeFor[*C.TF_Status]().Elem().Name() {
		return false
	}
	s := *(**C.TF_Status)(v.UnsafePointer())
	defer runtime.KeepAlive(err)
	return s != nil && C.TF_GetCode(s) == C.TF_INVALID_ARGUMENT
}
