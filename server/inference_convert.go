package server

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/inference"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

// inferRequest converts a V2 request: raw or typed contents become the core's
// little-endian bytes (or BYTES elements), and the timeout parameter (microseconds,
// as Triton defines it) becomes a deadline. Other parameters tritonclient may set
// (sequence_id, sequence_start, sequence_end, priority) are tolerated and ignored.
func inferRequest(req *oip.ModelInferRequest) (inference.Request, time.Duration, error) {
	out := inference.Request{Model: req.GetModelName(), Version: req.GetModelVersion()}
	timeout, err := timeoutParam(req.GetParameters())
	if err != nil {
		return out, 0, err
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

// fromContents converts typed contents to the core's form, checking the count.
func fromContents(ci *inference.Input, c *oip.InferTensorContents, n int64) error {
	count := func(field string, got int) error {
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
