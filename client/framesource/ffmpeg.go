package framesource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// FFmpeg reads a video file through ffmpeg (Debian's ffmpeg package, which the
// project's set-up installs): as JPEG frames (`-f image2pipe -c:v mjpeg`), or as raw
// RGB frames (`-f rawvideo -pix_fmt rgb24`) with opts.Raw, whose size comes from
// opts.Width/Height or from ffprobe. Close stops ffmpeg.
func FFmpeg(ctx context.Context, path string, opts Options) (*Source, error) {
	bin, err := lookPath(opts.FFmpeg, "ffmpeg")
	if err != nil {
		return nil, err
	}
	w, h := opts.Width, opts.Height
	if (w == 0) != (h == 0) || w < 0 || h < 0 {
		return nil, fmt.Errorf("framesource: set both width and height to scale, or neither (got %dx%d)", w, h)
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-i", path}
	if w > 0 {
		args = append(args, "-vf", fmt.Sprintf("scale=%d:%d", w, h))
	}
	kind := "JPEG"
	if opts.Raw {
		if w == 0 {
			if w, h, err = probe(ctx, opts.FFprobe, path); err != nil {
				return nil, err
			}
		}
		args = append(args, "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
		kind = fmt.Sprintf("raw %dx%d", w, h)
	} else {
		args = append(args, "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "2", "-")
	}
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("framesource: %w", err)
	}
	stderr := &tail{max: 4096}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("framesource: start ffmpeg: %w", err)
	}
	var once sync.Once
	var waitErr error
	wait := func() error {
		once.Do(func() { waitErr = cmd.Wait() })
		return waitErr
	}
	var read func() (*pb.Image, error)
	if opts.Raw {
		size := w * h * 3
		read = func() (*pb.Image, error) {
			rgb := make([]byte, size)
			if _, err := io.ReadFull(stdout, rgb); err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) {
					return nil, fmt.Errorf("framesource: ffmpeg's output ends inside a %dx%d frame", w, h)
				}
				return nil, err
			}
			return &pb.Image{Data: &pb.Image_Raw{Raw: &pb.RawImage{Rgb: rgb, Width: uint32(w), Height: uint32(h)}}}, nil
		}
	} else {
		read = MJPEG(stdout).next
	}
	src := &Source{Name: fmt.Sprintf("%s (ffmpeg, %s)", path, kind)}
	src.next = func() (*pb.Image, error) {
		img, err := read()
		if errors.Is(err, io.EOF) {
			if werr := wait(); werr != nil {
				return nil, fmt.Errorf("framesource: ffmpeg failed on %s: %v: %s", path, werr, stderr)
			}
		}
		return img, err
	}
	src.close = func() error {
		cancel()
		wait()
		return nil
	}
	return src, nil
}

// probe asks ffprobe for the first video stream's size.
func probe(ctx context.Context, ffprobe, path string) (w, h int, err error) {
	bin, err := lookPath(ffprobe, "ffprobe")
	if err != nil {
		return 0, 0, err
	}
	out, err := exec.CommandContext(ctx, bin, "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=width,height", "-of", "csv=s=x:p=0", path).CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("framesource: ffprobe %s: %v: %s", path, err, bytes.TrimSpace(out))
	}
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "%dx%d", &w, &h); err != nil || w <= 0 || h <= 0 {
		return 0, 0, fmt.Errorf("framesource: %s has no video stream with a size (ffprobe said %q)", path, bytes.TrimSpace(out))
	}
	return w, h, nil
}

// lookPath finds the program, or says how to install it.
func lookPath(given, name string) (string, error) {
	if given == "" {
		given = name
	}
	p, err := exec.LookPath(given)
	if err != nil {
		return "", fmt.Errorf("framesource: %s not found (install Debian's ffmpeg package; `make setup` does): %w", name, err)
	}
	return p, nil
}

// tail keeps the last max bytes written to it: ffmpeg's last words.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.buf))
}

// WriteVideo encodes frames (all of one size) into a video file at fps frames per
// second through ffmpeg: losslessly (FFV1) for a .mkv path, otherwise with ffmpeg's
// default codec for the path's extension. Tests and benchmarks compose videos with it.
func WriteVideo(ctx context.Context, path string, fps int, frames []image.Image, opts Options) error {
	if len(frames) == 0 {
		return errors.New("framesource: no frames to write")
	}
	bin, err := lookPath(opts.FFmpeg, "ffmpeg")
	if err != nil {
		return err
	}
	b := frames[0].Bounds()
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-s", fmt.Sprintf("%dx%d", b.Dx(), b.Dy()), "-r", fmt.Sprint(fps), "-i", "-"}
	if strings.EqualFold(filepath.Ext(path), ".mkv") {
		args = append(args, "-c:v", "ffv1", "-pix_fmt", "bgr0")
	}
	cmd := exec.CommandContext(ctx, bin, append(args, path)...)
	var rgb bytes.Buffer
	for i, f := range frames {
		if f.Bounds().Size() != b.Size() {
			return fmt.Errorf("framesource: frame %d is %v, the first is %v", i, f.Bounds().Size(), b.Size())
		}
		for y := f.Bounds().Min.Y; y < f.Bounds().Max.Y; y++ {
			for x := f.Bounds().Min.X; x < f.Bounds().Max.X; x++ {
				c := color.RGBAModel.Convert(f.At(x, y)).(color.RGBA)
				rgb.Write([]byte{c.R, c.G, c.B})
			}
		}
	}
	cmd.Stdin = &rgb
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("framesource: ffmpeg writing %s: %v: %s", path, err, bytes.TrimSpace(out))
	}
	return nil
}
