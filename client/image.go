package client

import (
	"image"
	"image/color"
	"iter"
	"os"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// ImageFile reads a JPEG or PNG file; the server decodes it.
func ImageFile(path string) (*pb.Image, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ImageBytes(b), nil
}

// ImageBytes wraps the bytes of a JPEG or PNG file.
func ImageBytes(encoded []byte) *pb.Image {
	return &pb.Image{Data: &pb.Image_Encoded{Encoded: encoded}}
}

// ImageOf sends img as a raw RGB frame: no encoding on either side. Alpha is dropped
// and grey stays grey (R = G = B, which the server's RGB-to-grey maps back exactly).
func ImageOf(img image.Image) *pb.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	rgb := make([]byte, 0, w*h*3)
	switch m := img.(type) {
	case *image.Gray:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for _, v := range m.Pix[m.PixOffset(b.Min.X, y):][:w] {
				rgb = append(rgb, v, v, v)
			}
		}
	case *image.NRGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):][:4*w]
			for x := 0; x < 4*w; x += 4 {
				rgb = append(rgb, row[x], row[x+1], row[x+2])
			}
		}
	case *image.RGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):][:4*w]
			for x := 0; x < 4*w; x += 4 {
				c := color.NRGBAModel.Convert(color.RGBA{row[x], row[x+1], row[x+2], row[x+3]}).(color.NRGBA)
				rgb = append(rgb, c.R, c.G, c.B)
			}
		}
	default:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
				rgb = append(rgb, c.R, c.G, c.B)
			}
		}
	}
	return &pb.Image{Data: &pb.Image_Raw{Raw: &pb.RawImage{Rgb: rgb, Width: uint32(w), Height: uint32(h)}}}
}

// Frames numbers images as stream frames (ids 1, 2, ...) stamped with the time each
// is taken from images.
func Frames(images iter.Seq[*pb.Image]) iter.Seq[*pb.StreamFrame] {
	return func(yield func(*pb.StreamFrame) bool) {
		id := uint64(0)
		for img := range images {
			id++
			if !yield(&pb.StreamFrame{FrameId: id, CaptureTime: timestamppb.New(time.Now()), Image: img}) {
				return
			}
		}
	}
}
