package precision

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"sync"
)

// GraphKey identifies a SavedModel's graph: the SHA-256 of its saved_model.pb. Two
// versions with the same key run the same kernels on the same shapes, whatever their
// weights (variables/ holds those), so they run at the same speeds.
func GraphKey(dir string) ([32]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, "saved_model.pb"))
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// maxCalibrations bounds the graphs remembered; a server sees a few.
const maxCalibrations = 64

// Calibrations remembers the calibration of each graph this process has timed, so
// that a new version of the same graph (a copy, or retrained weights) skips the timing
// runs: on a loaded server they compete with serving for the cores, and they measure
// less well there than at start-up, when the first version was timed alone.
type Calibrations struct {
	mu      sync.Mutex
	byGraph map[[32]byte]Calibration
}

// Get returns the calibration of the graph with key, if one was kept.
func (c *Calibrations) Get(key [32]byte) (Calibration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cal, ok := c.byGraph[key]
	return cal, ok
}

// Put keeps cal for the graph with key.
func (c *Calibrations) Put(key [32]byte, cal Calibration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byGraph == nil || len(c.byGraph) >= maxCalibrations {
		c.byGraph = map[[32]byte]Calibration{}
	}
	c.byGraph[key] = cal
}
