package fashionmnist

import (
	"os"
	"strings"
	"testing"
)

func TestLoadTest(t *testing.T) {
	if _, err := os.Stat(DefaultDir); err != nil && os.Getenv("CI") != "true" {
		t.Skipf("Fashion-MNIST not installed (%v); make setup installs it", err)
	}
	s, err := Load("", "test")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(s.Images), 10000; got != want {
		t.Fatalf("got %d images, want %d", got, want)
	}
	// The first test items of Fashion-MNIST are an ankle boot, a pullover and a trouser.
	if got := s.Labels[:3]; got[0] != 9 || got[1] != 2 || got[2] != 1 {
		t.Fatalf("got labels %v, want [9 2 1]", got)
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(t.TempDir(), "test")
	if err == nil || !strings.Contains(err.Error(), "dataset-fashion-mnist") {
		t.Fatalf("got %v, want an error naming the Debian package", err)
	}
}
