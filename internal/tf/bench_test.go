package tf

import (
	"testing"

	"github.com/atelier-vision/atelier/internal/tensor"
)

// BenchmarkConvert measures a round trip of one 224x224x3 uint8 image through
// TensorFlow memory: toTF, fromTF and both frees.
func BenchmarkConvert(b *testing.B) {
	in, _ := tensor.NewUint8([]int64{1, 224, 224, 3}, make([]uint8, 224*224*3))
	b.SetBytes(int64(len(in.Uint8)))
	for b.Loop() {
		x, err := toTF(in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := fromTF(x); err != nil {
			b.Fatal(err)
		}
		freeTensor(x)
	}
}
