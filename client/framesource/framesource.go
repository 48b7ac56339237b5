// Package framesource reads video frames to stream to Atelier: from a folder of JPEG
// and PNG files, from an MJPEG file (JPEG images back to back, as IP cameras and
// `ffmpeg -f mjpeg` write them), or from any video file that ffmpeg can read.
//
// A Source yields each frame as a *pb.Image, ready for client.Frames and the
// client's ClassifyStream and DetectStream:
//
//	src, err := framesource.Open(ctx, "shop.mp4", framesource.Options{})
//	...
//	defer src.Close()
//	err = c.ClassifyStream(ctx, cfg, client.Frames(src.Images(ctx, 15)), onMessage)
//	if err == nil {
//		err = src.Err()
//	}
package framesource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"time"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// MaxFrameBytes bounds one encoded frame read from an MJPEG stream.
const MaxFrameBytes = 64 << 20

// Options tunes how a video file is read through ffmpeg; folders and MJPEG files
// are read as they are.
type Options struct {
	// Raw asks ffmpeg for raw RGB frames instead of JPEG: exact pixels, 3 bytes per
	// pixel on the wire, no decoding on the server.
	Raw bool
	// Width and Height scale the video (both or neither); 0 keeps its size.
	Width, Height int
	// FFmpeg is the ffmpeg program; empty means "ffmpeg" on PATH (FFprobe likewise).
	FFmpeg, FFprobe string
}

// Source yields a video's frames in order. It is not safe for concurrent use.
type Source struct {
	// Name says what is read and how, for progress lines.
	Name  string
	next  func() (*pb.Image, error)
	close func() error
	err   error
	count int
}

// Open reads path: a folder (its .jpg, .jpeg and .png files in name order), an MJPEG
// file (.mjpeg or .mjpg), or anything else through ffmpeg. ctx bounds the ffmpeg
// process; Close the source when done.
func Open(ctx context.Context, path string, opts Options) (*Source, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("framesource: %w", err)
	}
	switch ext := strings.ToLower(filepath.Ext(path)); {
	case info.IsDir():
		return Dir(path)
	case ext == ".mjpeg" || ext == ".mjpg":
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("framesource: %w", err)
		}
		src := MJPEG(f)
		src.Name = path + " (MJPEG)"
		return src, nil
	default:
		return FFmpeg(ctx, path, opts)
	}
}

// Next returns the next frame, or io.EOF after the last one.
func (s *Source) Next() (*pb.Image, error) {
	if s.err != nil {
		return nil, s.err
	}
	img, err := s.next()
	if err != nil {
		s.err = err
		return nil, err
	}
	s.count++
	return img, nil
}

// Count is how many frames have been read.
func (s *Source) Count() int { return s.count }

// Err is the error that ended Images early; nil when the frames simply ran out.
func (s *Source) Err() error {
	if errors.Is(s.err, io.EOF) {
		return nil
	}
	return s.err
}

// Close releases the source (and stops ffmpeg).
func (s *Source) Close() error {
	if s.close == nil {
		return nil
	}
	c := s.close
	s.close = nil
	return c()
}

// Images yields the frames at up to fps per second (0: as fast as they are taken),
// until the frames end, reading fails (see Err), or ctx is done.
func (s *Source) Images(ctx context.Context, fps float64) iter.Seq[*pb.Image] {
	return func(yield func(*pb.Image) bool) {
		var tick *time.Ticker
		if fps > 0 {
			tick = time.NewTicker(time.Duration(float64(time.Second) / fps))
			defer tick.Stop()
		}
		for first := true; ; first = false {
			if tick != nil && !first {
				select {
				case <-tick.C:
				case <-ctx.Done():
					return
				}
			}
			if ctx.Err() != nil {
				return
			}
			img, err := s.Next()
			if err != nil || !yield(img) {
				return
			}
		}
	}
}
