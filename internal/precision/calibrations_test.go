package precision

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCalibrationsKeepOnePerGraph(t *testing.T) {
	dir := func(pb string) string {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, "saved_model.pb"), []byte(pb), 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, aCopy, b := dir("graph a"), dir("graph a"), dir("graph b")
	key := func(d string) [32]byte {
		k, err := GraphKey(d)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if key(a) != key(aCopy) || key(a) == key(b) {
		t.Fatal("the key must follow saved_model.pb's bytes")
	}
	if _, err := GraphKey(t.TempDir()); err == nil {
		t.Fatal("a folder without saved_model.pb has no key")
	}
	var c Calibrations
	if _, ok := c.Get(key(a)); ok {
		t.Fatal("an empty cache answered")
	}
	c.Put(key(a), Calibration{MinBatch: 4})
	if got, ok := c.Get(key(aCopy)); !ok || got.MinBatch != 4 {
		t.Fatalf("a copy of the graph: got %v, %v; want the calibration kept for it", got, ok)
	}
	if _, ok := c.Get(key(b)); ok {
		t.Fatal("another graph got the first one's calibration")
	}
	for i := range maxCalibrations + 1 {
		c.Put([32]byte{byte(i), 1}, Calibration{MinBatch: i})
	}
	if n := len(c.byGraph); n > maxCalibrations {
		t.Fatalf("%d graphs kept, over the bound of %d", n, maxCalibrations)
	}
}
