package framesource

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/testenv"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// pattern is a w x h picture that differs from frame to frame.
func pattern(i, w, h int) *image.RGBA {
	im := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			im.Set(x, y, color.RGBA{uint8(x*8 + i), uint8(y * 8), uint8(i * 40), 255})
		}
	}
	return im
}

func encodeJPEG(t *testing.T, im image.Image) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, im, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readAll reads every frame of src.
func readAll(t *testing.T, src *Source) []*pb.Image {
	t.Helper()
	var out []*pb.Image
	for img := range src.Images(context.Background(), 0) {
		out = append(out, img)
	}
	return out
}

func TestDir(t *testing.T) {
	dir := t.TempDir()
	var want [][]byte
	for i, name := range []string{"frame-002.png", "frame-000.jpg", "frame-001.JPEG"} {
		var data []byte
		if strings.HasSuffix(name, ".png") {
			var buf bytes.Buffer
			png.Encode(&buf, pattern(i, 8, 8))
			data = buf.Bytes()
		} else {
			data = encodeJPEG(t, pattern(i, 8, 8))
		}
		os.WriteFile(filepath.Join(dir, name), data, 0o644)
		want = append(want, data)
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a frame"), 0o644)
	want = [][]byte{want[1], want[2], want[0]} // name order
	src, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, src)
	if src.Err() != nil || len(got) != 3 || src.Count() != 3 {
		t.Fatalf("got %d frames (count %d), err %v; want 3", len(got), src.Count(), src.Err())
	}
	for i := range got {
		if !bytes.Equal(got[i].GetEncoded(), want[i]) {
			t.Fatalf("frame %d is not the file's bytes", i)
		}
	}
	if _, err := Dir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no .jpg") {
		t.Fatalf("empty folder: got %v, want an error naming the extensions", err)
	}
}

// TestMJPEG splits JPEG streams, with multipart headers between images, an APP
// segment holding a fake EOI, and stuffed bytes in the scans.
func TestMJPEG(t *testing.T) {
	a, b := encodeJPEG(t, pattern(1, 16, 16)), encodeJPEG(t, pattern(2, 24, 8))
	// An APP1 segment right after SOI whose payload contains FF D9.
	app := []byte{0xff, 0xe1, 0x00, 0x06, 0xff, 0xd9, 0xff, 0xd9}
	withApp := append(append([]byte{0xff, 0xd8}, app...), a[2:]...)
	header := []byte("--frame\r\nContent-Type: image/jpeg\r\n\r\n")
	cases := []struct {
		name    string
		stream  []byte
		want    [][]byte
		wantErr error
	}{
		{"back to back", bytes.Join([][]byte{a, b, a}, nil), [][]byte{a, b, a}, nil},
		{"multipart", bytes.Join([][]byte{header, a, []byte("\r\n"), header, b, []byte("\r\n--frame--")}, nil), [][]byte{a, b}, nil},
		{"fake EOI in a segment", append(append([]byte{}, withApp...), b...), [][]byte{withApp, b}, nil},
		{"empty", nil, nil, nil},
		{"truncated last image", append(append([]byte{}, a...), b[:len(b)/2]...), [][]byte{a}, errTruncated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := MJPEG(bytes.NewReader(tc.stream))
			got := readAll(t, src)
			if !errors.Is(src.Err(), tc.wantErr) {
				t.Fatalf("got error %v, want %v", src.Err(), tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d images, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !bytes.Equal(got[i].GetEncoded(), tc.want[i]) {
					t.Fatalf("image %d: got %d bytes, want %d", i, len(got[i].GetEncoded()), len(tc.want[i]))
				}
				if _, err := jpeg.Decode(bytes.NewReader(got[i].GetEncoded())); err != nil {
					t.Fatalf("image %d does not decode: %v", i, err)
				}
			}
		})
	}
}

// needFFmpeg fails under CI=true, and skips elsewhere, when ffmpeg is missing.
func needFFmpeg(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		testenv.Missing(t, "ffmpeg", "run `make setup`, which installs Debian's ffmpeg package")
	}
}

// TestFFmpeg writes a lossless video, then reads it back raw (exact pixels) and as
// JPEG (close pixels), scaled and not.
func TestFFmpeg(t *testing.T) {
	needFFmpeg(t)
	const n = 12
	frames := make([]image.Image, n)
	for i := range frames {
		frames[i] = pattern(i, 32, 16)
	}
	path := filepath.Join(t.TempDir(), "video.mkv")
	if err := WriteVideo(context.Background(), path, 10, frames, Options{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		opts     Options
		w, h     int
		maxError float64 // mean absolute pixel error against the source frames
	}{
		{"raw", Options{Raw: true}, 32, 16, 0},
		{"jpeg", Options{}, 32, 16, 6},
		{"raw scaled", Options{Raw: true, Width: 16, Height: 8}, 16, 8, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, err := Open(context.Background(), path, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			got := readAll(t, src)
			if src.Err() != nil || len(got) != n {
				t.Fatalf("got %d frames, err %v; want %d", len(got), src.Err(), n)
			}
			for i, img := range got {
				im := decode(t, img)
				if im.Bounds().Dx() != tc.w || im.Bounds().Dy() != tc.h {
					t.Fatalf("frame %d is %v, want %dx%d", i, im.Bounds().Size(), tc.w, tc.h)
				}
				if tc.maxError >= 0 {
					if e := meanError(im, frames[i]); e > tc.maxError {
						t.Fatalf("frame %d differs by %.2f per channel, want at most %.2f", i, e, tc.maxError)
					}
				}
			}
		})
	}
}

func TestFFmpegErrors(t *testing.T) {
	needFFmpeg(t)
	notVideo := filepath.Join(t.TempDir(), "notes.mp4")
	os.WriteFile(notVideo, []byte("not a video at all"), 0o644)
	if _, err := Open(context.Background(), notVideo, Options{Raw: true}); err == nil || !strings.Contains(err.Error(), "ffprobe") {
		t.Fatalf("raw from a non-video: got %v, want ffprobe's complaint", err)
	}
	src, err := Open(context.Background(), notVideo, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if got := readAll(t, src); len(got) != 0 || src.Err() == nil || !strings.Contains(src.Err().Error(), "ffmpeg failed") {
		t.Fatalf("got %d frames and %v, want ffmpeg's failure", len(got), src.Err())
	}
	if _, err := Open(context.Background(), notVideo, Options{FFmpeg: "no-such-ffmpeg"}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("missing ffmpeg: got %v, want not found", err)
	}
	if _, err := Open(context.Background(), filepath.Join(t.TempDir(), "missing.mp4"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: got %v, want ErrNotExist", err)
	}
}

// TestImagesPacesAndStops paces frames and stops when the context is done.
func TestImagesPacesAndStops(t *testing.T) {
	src := MJPEG(bytes.NewReader(bytes.Repeat(encodeJPEG(t, pattern(0, 8, 8)), 100)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start, n := time.Now(), 0
	for range src.Images(ctx, 100) {
		if n++; n == 10 {
			cancel()
		}
	}
	if took := time.Since(start); n != 10 || took < 80*time.Millisecond {
		t.Fatalf("got %d frames in %v, want 10 at 100/s (at least 90 ms)", n, took)
	}
	if src.Err() != nil {
		t.Fatalf("got %v, want no error after a cancel", src.Err())
	}
}

func decode(t *testing.T, img *pb.Image) image.Image {
	t.Helper()
	if raw := img.GetRaw(); raw != nil {
		w, h := int(raw.Width), int(raw.Height)
		if len(raw.Rgb) != w*h*3 {
			t.Fatalf("raw frame has %d bytes for %dx%d", len(raw.Rgb), w, h)
		}
		im := image.NewRGBA(image.Rect(0, 0, w, h))
		for i := range w * h {
			im.Pix[i*4], im.Pix[i*4+1], im.Pix[i*4+2], im.Pix[i*4+3] = raw.Rgb[i*3], raw.Rgb[i*3+1], raw.Rgb[i*3+2], 255
		}
		return im
	}
	im, _, err := image.Decode(bytes.NewReader(img.GetEncoded()))
	if err != nil {
		t.Fatal(err)
	}
	return im
}

func meanError(a, b image.Image) float64 {
	sum, n := 0.0, 0
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			for _, d := range []int{int(r1>>8) - int(r2>>8), int(g1>>8) - int(g2>>8), int(b1>>8) - int(b2>>8)} {
				sum += float64(max(d, -d))
				n++
			}
		}
	}
	return sum / float64(n)
}
