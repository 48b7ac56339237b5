package server

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/atelier-vision/atelier/internal/batching"
	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/inference"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

// inferRequest converts a V2 request: raw or typed contents become the core's
// little-endian bytes (or BYTES elements), and the timeout parameter (microseconds,
// as Triton defines it) becomes a deadline; priority is read by priorityParam. Other
// parameters tritonclient may set (sequence_id, sequence_start, sequence_end) are
// tolerated and ignored;
// those that would change the answer (shared memory, classification) are refused.
func inferRequest(req *oip.ModelInferRequest) (inference.Request, time.Duration, error) {
	out := inference.Request{Model: req.GetModelName(), Version: req.GetModelVersion()}
	timeout, err := timeoutParam(req.GetParameters())
	if err != nil {
		return out, 0, err
	}
	if err := checkParams("", req.GetParameters(), requestParams); err != nil {
		return out, 0, err
	}
	for _, in := range req.GetInputs() {
		if err := checkParams(fmt.Sprintf("input %q: ", in.GetName()), in.GetParameters(), inputParams); err != nil {
			return out, 0, err
		}
	}
	for _, o := range req.GetOutputs() {
		if err := checkParams(fmt.Sprintf("output %q: ", o.GetName()), o.GetParameters(), outputParams); err != nil {
			return out, 0, err
		}
	}
	raw := req.GetRawInputContents()
	if len(raw) > 0 && len(raw) != len(req.GetInputs()) {
		return out, 0, fmt.Errorf("%w: raw_input_contents has %d entries, want one per input (%d)", errkind.Invalid, len(raw), len(req.GetInputs()))
	}
	for i, in := range req.GetInputs() {
		ci := inference.Input{Name: in.GetName(), Datatype: in.GetDatatype(), Shape: in.GetShape()}
		n, err := inference.Elements(ci.Name, ci.Shape)
		if err != nil {
			return out, 0, err
		}
		switch {
		case len(raw) > 0 && in.GetContents() != nil:
			return out, 0, fmt.Errorf("%w: input %q: raw_input_contents and contents are both set; use one", errkind.Invalid, ci.Name)
		case len(raw) > 0 && ci.Datatype == inference.TypeBytes:
			if ci.Elems, err = inference.DecodeBytes(ci.Name, raw[i], n); err != nil {
				return out, 0, err
			}
		case len(raw) > 0:
			ci.Raw = raw[i]
		case in.GetContents() == nil:
			return out, 0, fmt.Errorf("%w: input %q has no data: set contents or raw_input_contents", errkind.Invalid, ci.Name)
		default:
			if err := fromContents(&ci, in.GetContents(), n); err != nil {
				return out, 0, err
			}
		}
		out.Inputs = append(out.Inputs, ci)
	}
	for _, o := range req.GetOutputs() {
		out.Outputs = append(out.Outputs, o.GetName())
	}
	return out, timeout, nil
}

// fromContents converts typed contents to the core's form, checking the count and
// that no other contents field holds data the datatype would leave unread.
func fromContents(ci *inference.Input, c *oip.InferTensorContents, n int64) error {
	count := func(field string, got int) error {
		for _, f := range []struct {
			name string
			n    int
		}{
			{"bool_contents", len(c.BoolContents)}, {"int_contents", len(c.IntContents)}, {"int64_contents", len(c.Int64Contents)},
			{"uint_contents", len(c.UintContents)}, {"uint64_contents", len(c.Uint64Contents)}, {"fp32_contents", len(c.Fp32Contents)},
			{"fp64_contents", len(c.Fp64Contents)}, {"bytes_contents", len(c.BytesContents)},
		} {
			if f.n > 0 && f.name != field {
				return fmt.Errorf("%w: input %q: contents.%s is set, but a %s tensor is read from contents.%s only",
					errkind.Invalid, ci.Name, f.name, ci.Datatype, field)
			}
		}
		if int64(got) != n {
			return fmt.Errorf("%w: input %q: contents.%s holds %d elements, want %d for %s shape %v",
				errkind.Invalid, ci.Name, field, got, n, ci.Datatype, ci.Shape)
		}
		return nil
	}
	switch ci.Datatype {
	case inference.TypeUint8:
		if err := count("uint_contents", len(c.UintContents)); err != nil {
			return err
		}
		ci.Raw = make([]byte, n)
		for j, v := range c.UintContents {
			if v > math.MaxUint8 {
				return fmt.Errorf("%w: input %q: contents.uint_contents[%d] is %d, over 255 for UINT8", errkind.Invalid, ci.Name, j, v)
			}
			ci.Raw[j] = byte(v)
		}
	case inference.TypeInt32:
		if err := count("int_contents", len(c.IntContents)); err != nil {
			return err
		}
		ci.Raw = make([]byte, 0, 4*n)
		for _, v := range c.IntContents {
			ci.Raw = binary.LittleEndian.AppendUint32(ci.Raw, uint32(v))
		}
	case inference.TypeInt64:
		if err := count("int64_contents", len(c.Int64Contents)); err != nil {
			return err
		}
		ci.Raw = make([]byte, 0, 8*n)
		for _, v := range c.Int64Contents {
			ci.Raw = binary.LittleEndian.AppendUint64(ci.Raw, uint64(v))
		}
	case inference.TypeFP32:
		if err := count("fp32_contents", len(c.Fp32Contents)); err != nil {
			return err
		}
		ci.Raw = make([]byte, 0, 4*n)
		for _, v := range c.Fp32Contents {
			ci.Raw = binary.LittleEndian.AppendUint32(ci.Raw, math.Float32bits(v))
		}
	case inference.TypeBytes:
		if err := count("bytes_contents", len(c.BytesContents)); err != nil {
			return err
		}
		ci.Elems = c.BytesContents
	default:
		return fmt.Errorf("%w: input %q: datatype %q cannot be sent as typed contents here (Atelier's models take UINT8, INT32, INT64, FP32 and BYTES)",
			errkind.Invalid, ci.Name, ci.Datatype)
	}
	return nil
}

// A paramRule says what a parameter may be: the types it may have (as tritonclient
// and Triton type it; any, when empty), or why it is refused. A value of a type this
// proto lacks arrives unset and is tolerated.
type paramRule struct {
	types  []string
	refuse string
}

const (
	refuseShm   = "shared-memory tensors are not supported; send tensors in raw_input_contents or contents, and read raw_output_contents"
	refuseClass = "Triton's classification output is not supported; request the probabilities (the _image model also answers label, score and class_index)"
)

// The parameters Atelier reads or tolerates, and those it refuses because ignoring
// them would change the answer; any other parameter is accepted and ignored.
var (
	requestParams = map[string]paramRule{
		"sequence_id":    {types: []string{"int64", "string"}},
		"sequence_start": {types: []string{"bool"}}, "sequence_end": {types: []string{"bool"}},
		"priority":           {types: []string{"uint64", "int64"}}, // priorityParam
		"binary_data_output": {types: []string{"bool"}},            // HTTP's; gRPC answers are always raw
	}
	inputParams = map[string]paramRule{
		"shared_memory_region": {refuse: refuseShm}, "shared_memory_byte_size": {refuse: refuseShm}, "shared_memory_offset": {refuse: refuseShm},
	}
	outputParams = map[string]paramRule{
		"shared_memory_region": {refuse: refuseShm}, "shared_memory_byte_size": {refuse: refuseShm}, "shared_memory_offset": {refuse: refuseShm},
		"classification": {refuse: refuseClass},
		"binary_data":    {types: []string{"bool"}}, // HTTP's; gRPC answers are always raw
	}
)

// checkParams holds parameters to their rules; where names the input or output they
// belong to ("" for the request's own).
func checkParams(where string, params map[string]*oip.InferParameter, rules map[string]paramRule) error {
	for key, p := range params {
		r, ok := rules[key]
		switch {
		case !ok:
		case r.refuse != "":
			return fmt.Errorf("%w: %sparameter %q is not supported: %s", errkind.Invalid, where, key, r.refuse)
		case len(r.types) > 0 && p.GetParameterChoice() != nil && !slices.Contains(r.types, paramType(p)):
			return fmt.Errorf("%w: %sparameter %q must be %s, got %s", errkind.Invalid, where, key, strings.Join(r.types, " or "), paramType(p))
		}
	}
	return nil
}

// paramType names a parameter's type as the proto's oneof does.
func paramType(p *oip.InferParameter) string {
	switch p.GetParameterChoice().(type) {
	case *oip.InferParameter_BoolParam:
		return "bool"
	case *oip.InferParameter_Int64Param:
		return "int64"
	case *oip.InferParameter_StringParam:
		return "string"
	case *oip.InferParameter_DoubleParam:
		return "double"
	case *oip.InferParameter_Uint64Param:
		return "uint64"
	}
	return "unset"
}

// priorityParam reads Triton's priority parameter: levels start at 1, the highest,
// and Atelier has three (1 high, 2 normal, 3 low, as x-atelier-priority names them).
// As in Triton, 0 and a level past the last mean the default: the call's own priority
// (its x-atelier-priority, or normal). ok is false when the call should keep it.
func priorityParam(params map[string]*oip.InferParameter) (p batching.Priority, ok bool, err error) {
	var level uint64
	switch v := params["priority"].GetParameterChoice().(type) {
	case *oip.InferParameter_Uint64Param: // tritonclient's
		level = v.Uint64Param
	case *oip.InferParameter_Int64Param:
		if v.Int64Param < 0 {
			return 0, false, fmt.Errorf("%w: parameter \"priority\" is %d; levels start at 1, the highest (0: the default)", errkind.Invalid, v.Int64Param)
		}
		level = uint64(v.Int64Param)
	}
	switch level {
	case 1:
		return batching.High, true, nil
	case 2:
		return batching.Normal, true, nil
	case 3:
		return batching.Low, true, nil
	}
	return 0, false, nil
}

// timeoutParam reads the timeout parameter, in microseconds; 0 means none.
func timeoutParam(params map[string]*oip.InferParameter) (time.Duration, error) {
	p, ok := params["timeout"]
	if !ok {
		return 0, nil
	}
	v, ok := p.GetParameterChoice().(*oip.InferParameter_Int64Param)
	if !ok {
		return 0, fmt.Errorf("%w: parameter \"timeout\" must be an int64 (microseconds)", errkind.Invalid)
	}
	if v.Int64Param < 0 || v.Int64Param > int64(24*time.Hour/time.Microsecond) {
		return 0, fmt.Errorf("%w: parameter \"timeout\" is %d µs, want 0..%d (24 h)", errkind.Invalid, v.Int64Param, int64(24*time.Hour/time.Microsecond))
	}
	return time.Duration(v.Int64Param) * time.Microsecond, nil
}

// inferResponse answers in raw_output_contents, which tritonclient's as_numpy reads.
func inferResponse(id string, res inference.Response) *oip.ModelInferResponse {
	resp := &oip.ModelInferResponse{ModelName: res.Model, ModelVersion: res.Version, Id: id}
	for _, o := range res.Outputs {
		resp.Outputs = append(resp.Outputs, &oip.ModelInferResponse_InferOutputTensor{Name: o.Name, Datatype: o.Datatype, Shape: o.Shape})
		resp.RawOutputContents = append(resp.RawOutputContents, o.Raw)
	}
	return resp
}
