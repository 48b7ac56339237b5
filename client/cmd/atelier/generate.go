package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// design is one generated image, in JSON output.
type design struct {
	Index    int     `json:"index"`
	Category string  `json:"category"`
	Seed     *uint64 `json:"seed,omitempty"` // none for a blend between two seeds
	T        float32 `json:"t,omitempty"`
	Bytes    int     `json:"bytes"`
	File     string  `json:"file,omitempty"`
}

func generateCmd(fs *flag.FlagSet) func(context.Context, *app, []string) error {
	category := fs.String("category", "", "category to draw, a label of the generator (for example Dress)")
	count := fs.Int("count", 4, "designs to draw, 1..64")
	seed := fs.Uint64("seed", 0, "seed of the first design; design i uses seed+i")
	model := fs.String("model", "", "generator to use (default: the server's default generator)")
	outDir := fs.String("out-dir", "", "write each design to this folder (made if missing) as category-SEED-INDEX.png, the category in lower case; a blend of --steps as category-0-INDEX.png")
	gridFile := fs.String("grid", "", "write all designs tiled on one sheet to this PNG")
	columns := fs.Int("columns", 0, "columns of the --grid sheet (default: as square as possible)")
	steps := fs.Int("steps", 0, "instead of --count designs, morph from --seed to --to-seed in this many steps (Interpolate)")
	toSeed := fs.Uint64("to-seed", 1, "the last design's seed, with --steps")
	return func(ctx context.Context, a *app, args []string) error {
		if len(args) > 0 {
			return usagef("generate takes no arguments, got %q", args)
		}
		if *category == "" || *count < 1 || *count > 64 || *steps < 0 {
			return usagef("--category is required, --count must be 1..64 and --steps not negative")
		}
		c, err := a.connect()
		if err != nil {
			return err
		}
		spec := &pb.ModelSpec{Name: *model}
		var imgs []*pb.GeneratedImage
		var ts []float32
		if *steps > 0 {
			req := &pb.InterpolateRequest{Model: spec, Category: *category, Steps: uint32(*steps),
				Start: &pb.LatentPoint{Point: &pb.LatentPoint_Seed{Seed: *seed}},
				End:   &pb.LatentPoint{Point: &pb.LatentPoint_Seed{Seed: *toSeed}}}
			err = c.Interpolate(ctx, req, func(m *pb.InterpolateResponse) error {
				// A server that sends a step without an image, or more steps than
				// asked, would crash the loop below or fill memory until the deadline.
				switch {
				case m.Image == nil:
					return status.Errorf(codes.Internal, "the server sent step %d without an image", m.Step)
				case len(imgs) == *steps:
					return status.Errorf(codes.Internal, "the server sent more than the %d steps asked for", *steps)
				}
				imgs, ts = append(imgs, m.Image), append(ts, m.T)
				return nil
			})
		} else {
			var resp *pb.GenerateResponse
			resp, err = c.Generate(ctx, &pb.GenerateRequest{Model: spec, Category: *category, Count: uint32(*count), Seed: *seed})
			imgs = resp.GetImages()
		}
		if err != nil {
			return err
		}
		if *outDir != "" {
			if err := os.MkdirAll(*outDir, 0o755); err != nil {
				return err
			}
		}
		o := newOut(a.output, a.env.stdout, []string{"#", "CATEGORY", "SEED", "BYTES", "FILE"},
			[]string{"index", "category", "seed", "t", "bytes", "file"})
		var pngs [][]byte
		for i, img := range imgs {
			d := design{Index: i, Category: img.Category, Bytes: len(img.Png)}
			switch {
			case i >= len(ts):
				d.Seed = &img.Seed
			case ts[i] == 0:
				d.T, d.Seed = 0, seed
			case ts[i] == 1:
				d.T, d.Seed = 1, toSeed
			default:
				d.T = ts[i] // a blend of the two seeds' vectors: no seed of its own
			}
			if *outDir != "" {
				d.File = filepath.Join(*outDir, fmt.Sprintf("%s-%d-%d.png", slug(img.Category), img.Seed, i))
				if err := writeFile(d.File, 0o644, func(w io.Writer) error { _, err := w.Write(img.Png); return err }); err != nil {
					return err
				}
			}
			pngs = append(pngs, img.Png)
			seedText := "-"
			if d.Seed != nil {
				seedText = strconv.FormatUint(*d.Seed, 10)
			}
			o.record(d, [][]string{{strconv.Itoa(i), d.Category, seedText, strconv.Itoa(d.Bytes), d.File}},
				[][]string{{strconv.Itoa(i), d.Category, seedText, f32(d.T), strconv.Itoa(d.Bytes), d.File}})
		}
		if err := o.close(); err != nil {
			return err
		}
		if *gridFile != "" {
			if err := writeGrid(pngs, *columns, *gridFile); err != nil {
				return fmt.Errorf("--grid %s: %w", *gridFile, err)
			}
		}
		return nil
	}
}

// slug makes a category safe for a file name: "T-shirt/top" becomes "t-shirt-top".
func slug(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, s)
}
