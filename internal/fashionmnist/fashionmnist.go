// Package fashionmnist reads the Fashion-MNIST IDX files that Debian's
// dataset-fashion-mnist package installs, for tests, examples and benchmarks.
package fashionmnist

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// DefaultDir is where Debian's dataset-fashion-mnist package puts the files.
const DefaultDir = "/usr/share/datasets/fashion-mnist"

// EnvDir names the environment variable that points at another folder.
const EnvDir = "ATELIER_FASHION_MNIST"

// Labels are the ten categories, in class-index order.
var Labels = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
	"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// Side is the width and height of every image.
const Side = 28

// Set is one split: Images[i] holds Side*Side grey pixels, Labels[i] its class.
type Set struct {
	Images [][]uint8
	Labels []uint8
}

// Dir returns $ATELIER_FASHION_MNIST if set, else DefaultDir.
func Dir() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	return DefaultDir
}

// Load reads split "train" or "test" from dir ("" means Dir()).
func Load(dir, split string) (*Set, error) {
	if dir == "" {
		dir = Dir()
	}
	prefix := map[string]string{"train": "train", "test": "t10k"}[split]
	if prefix == "" {
		return nil, fmt.Errorf("fashionmnist: split must be train or test, not %q", split)
	}
	images, err := readIDX(dir, prefix+"-images-idx3-ubyte")
	if err != nil {
		return nil, err
	}
	labels, err := readIDX(dir, prefix+"-labels-idx1-ubyte")
	if err != nil {
		return nil, err
	}
	n := len(labels)
	if len(images) != n*Side*Side {
		return nil, fmt.Errorf("fashionmnist: %s has %d image bytes for %d labels", dir, len(images), n)
	}
	s := &Set{Labels: labels, Images: make([][]uint8, n)}
	for i := range s.Images {
		s.Images[i] = images[i*Side*Side : (i+1)*Side*Side]
	}
	return s, nil
}

// readIDX returns the body of an unsigned-byte IDX file, gzipped or not.
func readIDX(dir, stem string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(dir, stem+".gz"))
	if errors.Is(err, os.ErrNotExist) {
		data, err = os.ReadFile(filepath.Join(dir, stem))
	} else if err == nil {
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(data)); err == nil {
			data, err = io.ReadAll(zr)
		}
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("fashionmnist: %s(.gz) not found in %s: apt-get install dataset-fashion-mnist, or set $%s", stem, dir, EnvDir)
	}
	if err != nil {
		return nil, fmt.Errorf("fashionmnist: %s: %w", stem, err)
	}
	if len(data) < 4 || data[0] != 0 || data[1] != 0 || data[2] != 0x08 {
		return nil, fmt.Errorf("fashionmnist: %s is not an unsigned-byte IDX file", stem)
	}
	dims := int(data[3])
	if len(data) < 4+4*dims {
		return nil, fmt.Errorf("fashionmnist: %s: truncated header", stem)
	}
	size := 1
	for d := 0; d < dims; d++ {
		size *= int(binary.BigEndian.Uint32(data[4+4*d:]))
	}
	body := data[4+4*dims:]
	if len(body) != size {
		return nil, fmt.Errorf("fashionmnist: %s: header promises %d bytes, file holds %d", stem, size, len(body))
	}
	return body, nil
}
