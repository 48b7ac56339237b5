package framesource

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestEdgeDirSkipsWhatIsNoFrame: a folder's FIFO (which would block the source until
// someone writes to it), a link to a device (which never ends), a broken link and a
// folder named like a frame are not frames; a file over MaxFrameBytes fails the
// source by its size, without being read.
func TestEdgeDirSkipsWhatIsNoFrame(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	png.Encode(&buf, pattern(1, 8, 8))
	os.WriteFile(filepath.Join(dir, "frame-0.png"), buf.Bytes(), 0o644)
	os.Symlink("frame-0.png", filepath.Join(dir, "frame-1.png")) // a link to a frame is one
	if err := syscall.Mkfifo(filepath.Join(dir, "frame-2.png"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/dev/zero", filepath.Join(dir, "frame-3.png"))
	os.Symlink("missing.png", filepath.Join(dir, "frame-4.png"))
	os.Mkdir(filepath.Join(dir, "frame-5.png"), 0o755)
	src, err := Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, src); src.Err() != nil || len(got) != 2 || !strings.Contains(src.Name, "(2 images)") {
		t.Fatalf("got %d frames from %s, err %v; want the file and the link to it", len(got), src.Name, src.Err())
	}

	huge := filepath.Join(dir, "frame-6.png")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(2 << 30) // sparse: no disk used
	f.Close()
	src, err = Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, src)
	if len(got) != 2 || src.Err() == nil || !strings.Contains(src.Err().Error(), "2147483648 bytes, over the 67108864-byte limit of a frame") {
		t.Fatalf("got %d frames, err %v; want 2, then the 2 GiB file refused by its size", len(got), src.Err())
	}
}
