package inference

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/atelier-vision/atelier/internal/classify"
	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/parallel"
)

// The image models' tensor names.
const (
	InputImage     = "image"         // BYTES [n]: JPEG or PNG files
	OutputProbs    = "probabilities" // FP32 [n, classes]
	OutputLabel    = "label"         // BYTES [n]: the top-1 label
	OutputScore    = "score"         // FP32 [n]: the top-1 probability
	OutputClass    = "class_index"   // INT32 [n]: the top-1 class
	OutputBoxes    = "detection_boxes"
	OutputScores   = "detection_scores"
	OutputClasses  = "detection_classes"
	OutputNum      = "num_detections"
	OutputDetLabel = "detection_labels" // BYTES [n, K]: each box's class label
)

// imageIO describes an image model's inputs and outputs.
func imageIO(m *models.Model) (ins, outs []TensorMeta) {
	ins = []TensorMeta{{Name: InputImage, Datatype: TypeBytes, Shape: []int64{-1}}}
	if m.Role == models.RoleClassifier {
		classes := int64(-1)
		if p, ok := m.Output(OutputProbs); ok && len(p.Shape) == 2 {
			classes = p.Shape[1]
		}
		return ins, []TensorMeta{
			{Name: OutputProbs, Datatype: TypeFP32, Shape: []int64{-1, classes}},
			{Name: OutputLabel, Datatype: TypeBytes, Shape: []int64{-1}},
			{Name: OutputScore, Datatype: TypeFP32, Shape: []int64{-1}},
			{Name: OutputClass, Datatype: TypeInt32, Shape: []int64{-1}},
		}
	}
	return ins, []TensorMeta{
		{Name: OutputBoxes, Datatype: TypeFP32, Shape: []int64{-1, -1, 4}},
		{Name: OutputScores, Datatype: TypeFP32, Shape: []int64{-1, -1}},
		{Name: OutputClasses, Datatype: TypeFP32, Shape: []int64{-1, -1}},
		{Name: OutputNum, Datatype: TypeFP32, Shape: []int64{-1}},
		{Name: OutputDetLabel, Datatype: TypeBytes, Shape: []int64{-1, -1}},
	}
}

// images checks an image model's request and returns the encoded images.
func imagesOf(req Request, ins []TensorMeta) ([][]byte, error) {
	if err := checkNames(req.Model, req.Inputs, ins); err != nil {
		return nil, err
	}
	in := req.Inputs[0]
	if in.Datatype != TypeBytes {
		return nil, invalid(in.Name, "datatype %q, want BYTES (JPEG or PNG files)", in.Datatype)
	}
	n, err := Elements(in.Name, in.Shape)
	if err != nil {
		return nil, err
	}
	if err := checkShape(in, []int64{-1}); err != nil {
		return nil, err
	}
	if n < 1 || n > classify.MaxImages {
		return nil, invalid(in.Name, "%d images; send 1 to %d per request", n, classify.MaxImages)
	}
	if int64(len(in.Elems)) != n {
		return nil, invalid(in.Name, "shape %v holds %d elements but %d were sent", in.Shape, n, len(in.Elems))
	}
	return in.Elems, nil
}

// inferImage runs an image model.
func (s *Server) inferImage(ctx context.Context, m *models.Model, req Request) ([]Output, error) {
	ins, outs := imageIO(m)
	names, err := checkOutputs(req.Model, req.Outputs, outs)
	if err != nil {
		return nil, err
	}
	files, err := imagesOf(req, ins)
	if err != nil {
		return nil, err
	}
	var all map[string]Output
	if m.Role == models.RoleClassifier {
		all, err = s.classifyImages(ctx, m, files)
	} else {
		all, err = s.detectImages(ctx, m, files)
	}
	if err != nil {
		return nil, err
	}
	res := make([]Output, len(names))
	for i, n := range names {
		res[i] = all[n]
	}
	return res, nil
}

// classifyImages answers through the classify core with every class, on the version
// the caller holds, so the numbers are Classify's own.
func (s *Server) classifyImages(ctx context.Context, m *models.Model, files [][]byte) (map[string]Output, error) {
	p, _ := m.Output(OutputProbs)
	if len(p.Shape) != 2 || p.Shape[1] <= 0 || p.Shape[1] > classify.MaxTopK {
		return nil, fmt.Errorf("%w: %s output `probabilities` has shape %v, want [batch, 1..%d]", models.ErrWrongRole, m.Spec(), p.Shape, classify.MaxTopK)
	}
	classes := int(p.Shape[1])
	req := classify.Request{Model: m.Spec(), TopK: classes}
	for _, f := range files {
		req.Images = append(req.Images, imageio.Source{Encoded: f})
	}
	res, err := s.classifier().ClassifyOn(ctx, m, req)
	if errors.Is(err, errkind.Invalid) {
		return nil, fmt.Errorf("input %q: %w", InputImage, err) // as detectImages names it
	}
	if err != nil {
		return nil, err
	}
	n := len(files)
	probs := make([]float32, n*classes)
	labels := make([][]byte, n)
	scores := make([]float32, n)
	idx := make([]int32, n)
	for i, preds := range res.Predictions {
		for _, p := range preds {
			probs[i*classes+p.Index] = p.Score
		}
		labels[i], scores[i], idx[i] = []byte(preds[0].Label), preds[0].Score, int32(preds[0].Index)
	}
	b := int64(n)
	return map[string]Output{
		OutputProbs: {Name: OutputProbs, Datatype: TypeFP32, Shape: []int64{b, int64(classes)}, Raw: float32Bytes(probs)},
		OutputLabel: {Name: OutputLabel, Datatype: TypeBytes, Shape: []int64{b}, Raw: EncodeBytes(labels)},
		OutputScore: {Name: OutputScore, Datatype: TypeFP32, Shape: []int64{b}, Raw: float32Bytes(scores)},
		OutputClass: {Name: OutputClass, Datatype: TypeInt32, Shape: []int64{b}, Raw: int32Bytes(idx)},
	}, nil
}

// detectImages runs the detector on the images, prepared as Detect prepares them,
// and returns its valid boxes padded to the batch's largest count.
func (s *Server) detectImages(ctx context.Context, m *models.Model, files [][]byte) (map[string]Output, error) {
	h, w, c, err := m.ImageShape()
	if err != nil {
		return nil, err
	}
	n, size := len(files), h*w*c
	pix := make([]uint8, n*size)
	if err := parallel.For(ctx, n, runtime.GOMAXPROCS(0), func(i int) error {
		if err := s.Prep.Load(imageio.Source{Encoded: files[i]}, h, w, c, pix[i*size:(i+1)*size]); err != nil {
			return fmt.Errorf("%w: input %q: image %d: %w", errkind.Invalid, InputImage, i, err)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	dets, err := m.Detect(ctx, pix, n)
	if err != nil {
		return nil, err
	}
	k := 0
	for _, d := range dets {
		k = max(k, len(d))
	}
	boxes := make([]float32, n*k*4)
	scores := make([]float32, n*k)
	classes := make([]float32, n*k)
	num := make([]float32, n)
	labels := make([][]byte, n*k)
	for i, d := range dets {
		num[i] = float32(len(d))
		for j := range k {
			if j >= len(d) {
				labels[i*k+j] = nil
				continue
			}
			b := d[j].Box
			copy(boxes[(i*k+j)*4:], []float32{b.YMin, b.XMin, b.YMax, b.XMax})
			scores[i*k+j], classes[i*k+j] = d[j].Score, float32(d[j].Class)
			labels[i*k+j] = []byte(m.Label(d[j].Class))
		}
	}
	bn, bk := int64(n), int64(k)
	return map[string]Output{
		OutputBoxes:    {Name: OutputBoxes, Datatype: TypeFP32, Shape: []int64{bn, bk, 4}, Raw: float32Bytes(boxes)},
		OutputScores:   {Name: OutputScores, Datatype: TypeFP32, Shape: []int64{bn, bk}, Raw: float32Bytes(scores)},
		OutputClasses:  {Name: OutputClasses, Datatype: TypeFP32, Shape: []int64{bn, bk}, Raw: float32Bytes(classes)},
		OutputNum:      {Name: OutputNum, Datatype: TypeFP32, Shape: []int64{bn}, Raw: float32Bytes(num)},
		OutputDetLabel: {Name: OutputDetLabel, Datatype: TypeBytes, Shape: []int64{bn, bk}, Raw: EncodeBytes(labels)},
	}, nil
}
