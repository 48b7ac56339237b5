package framesource

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// Dir reads the .jpg, .jpeg and .png files of a folder, in name order (number them
// with leading zeros), each as one encoded frame.
func Dir(dir string) (*Source, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("framesource: %w", err)
	}
	var files []string
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".jpg", ".jpeg", ".png":
			if regular(filepath.Join(dir, e.Name()), e) {
				files = append(files, filepath.Join(dir, e.Name()))
			}
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("framesource: no .jpg, .jpeg or .png files in %s", dir)
	}
	slices.Sort(files)
	i := 0
	next := func() (*pb.Image, error) {
		if i == len(files) {
			return nil, io.EOF
		}
		data, err := readFrame(files[i])
		if err != nil {
			return nil, fmt.Errorf("framesource: %w", err)
		}
		i++
		return &pb.Image{Data: &pb.Image_Encoded{Encoded: data}}, nil
	}
	return &Source{Name: fmt.Sprintf("%s (%d images)", dir, len(files)), next: next}, nil
}

// regular reports whether a folder's entry is a file or a link to one. A FIFO named
// like a frame would block the source until someone wrote to it, a device would never
// end; a folder is no frame either.
func regular(path string, e os.DirEntry) bool {
	if e.Type()&os.ModeSymlink == 0 {
		return e.Type().IsRegular()
	}
	fi, err := os.Stat(path) // what the link points to; a broken link is no frame
	return err == nil && fi.Mode().IsRegular()
}

// readFrame reads one frame file of at most MaxFrameBytes: a larger one fails by its
// size, without being read.
func readFrame(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > MaxFrameBytes {
		return nil, fmt.Errorf("%s is %d bytes, over the %d-byte limit of a frame", path, fi.Size(), MaxFrameBytes)
	}
	buf := bytes.NewBuffer(make([]byte, 0, fi.Size()+bytes.MinRead)) // as os.ReadFile sizes it
	if _, err := buf.ReadFrom(io.LimitReader(f, MaxFrameBytes+1)); err != nil {
		return nil, err
	}
	if buf.Len() > MaxFrameBytes { // it grew since
		return nil, fmt.Errorf("%s is over the %d-byte limit of a frame", path, MaxFrameBytes)
	}
	return buf.Bytes(), nil
}

// MJPEG reads JPEG images back to back from r (an MJPEG file or ffmpeg's image2pipe
// output); bytes between images, such as multipart headers, are skipped. Closing the
// source closes r if it is an io.Closer.
func MJPEG(r io.Reader) *Source {
	br := bufio.NewReaderSize(r, 1<<16)
	src := &Source{Name: "MJPEG", next: func() (*pb.Image, error) {
		data, err := readJPEG(br)
		if err != nil {
			return nil, err
		}
		return &pb.Image{Data: &pb.Image_Encoded{Encoded: data}}, nil
	}}
	if c, ok := r.(io.Closer); ok {
		src.close = c.Close
	}
	return src
}

// errTruncated reports an MJPEG stream that ends inside an image.
var errTruncated = errors.New("framesource: MJPEG stream ends inside an image")

// readJPEG returns the next whole JPEG image (SOI to EOI) from r, walking its
// segments so that bytes inside them (such as an EXIF thumbnail's own EOI) do not
// end it early. It returns io.EOF when r ends between images.
func readJPEG(r *bufio.Reader) ([]byte, error) {
	if err := skipToSOI(r); err != nil {
		return nil, err
	}
	out := []byte{0xff, 0xd8}
	afterScan := false
	for {
		m, err := readMarker(r, afterScan)
		if err != nil {
			return nil, err
		}
		afterScan = false
		out = append(out, 0xff, m)
		switch {
		case m == 0xd9: // EOI
			return out, nil
		case m == 0x01 || (m >= 0xd0 && m <= 0xd7): // no length
			continue
		}
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return nil, errTruncated
		}
		n := int(l[0])<<8 | int(l[1])
		if n < 2 || len(out)+n > MaxFrameBytes {
			return nil, fmt.Errorf("framesource: bad JPEG segment length %d", n)
		}
		out = append(out, l[:]...)
		start := len(out)
		out = append(out, make([]byte, n-2)...)
		if _, err := io.ReadFull(r, out[start:]); err != nil {
			return nil, errTruncated
		}
		if m == 0xda { // start of scan: entropy-coded data up to the next marker
			if out, err = readScan(r, out); err != nil {
				return nil, err
			}
			afterScan = true
		}
	}
}

// skipToSOI consumes bytes up to and including the next FF D8.
func skipToSOI(r *bufio.Reader) error {
	prev := byte(0)
	for {
		b, err := r.ReadByte()
		if err != nil {
			return io.EOF
		}
		if prev == 0xff && b == 0xd8 {
			return nil
		}
		prev = b
	}
}

// readMarker reads FF (fill FFs allowed; the first already read with haveFF) and the
// marker byte.
func readMarker(r *bufio.Reader, haveFF bool) (byte, error) {
	if !haveFF {
		b, err := r.ReadByte()
		if err != nil {
			return 0, errTruncated
		}
		if b != 0xff {
			return 0, fmt.Errorf("framesource: JPEG marker expected, found byte %#x", b)
		}
	}
	for {
		b, err := r.ReadByte()
		if err != nil {
			return 0, errTruncated
		}
		if b != 0xff {
			return b, nil
		}
	}
}

// readScan appends entropy-coded bytes to out up to a marker other than a stuffed
// FF 00 or a restart marker; that marker's FF is consumed and not appended.
func readScan(r *bufio.Reader, out []byte) ([]byte, error) {
	for {
		chunk, err := r.ReadSlice(0xff)
		out = append(out, chunk...)
		if len(out) > MaxFrameBytes {
			return nil, fmt.Errorf("framesource: JPEG image over %d bytes", MaxFrameBytes)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return nil, errTruncated
		}
		next, err := r.Peek(1)
		if err != nil {
			return nil, errTruncated
		}
		if next[0] == 0x00 || (next[0] >= 0xd0 && next[0] <= 0xd7) {
			out = append(out, next[0])
			r.Discard(1)
			continue
		}
		return out[:len(out)-1], nil
	}
}
