package dashboard

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseCamera(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Camera
		err      string
	}{
		{"video", "door=shop.mp4", Camera{"door", "shop.mp4"}, ""},
		{"source with =", "aisle-2=/v/a=b.mjpeg", Camera{"aisle-2", "/v/a=b.mjpeg"}, ""},
		{"no source", "door=", Camera{}, "want NAME=SOURCE"},
		{"no =", "door", Camera{}, "want NAME=SOURCE"},
		{"bad name", "front door=x.mp4", Camera{}, "camera name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCamera(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseRule(t *testing.T) {
	for _, tc := range []struct {
		name, in           string
		camera, rule, cats string
		err                bool
	}{
		{"every camera", "dress=Dress", "", "dress", "Dress", false},
		{"one camera, two categories", "door:suit-like=Coat, Shirt", "door", "suit-like", "Coat|Shirt", false},
		{"no categories", "dress=", "", "", "", true},
		{"no name", "=Dress", "", "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRule(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("got error %v, want error %v", err, tc.err)
			}
			if tc.err {
				return
			}
			if got := strings.Join(r.Categories, "|"); r.Camera != tc.camera || r.Name != tc.rule || got != tc.cats {
				t.Errorf("got %q %q %q, want %q %q %q", r.Camera, r.Name, got, tc.camera, tc.rule, tc.cats)
			}
		})
	}
}

func TestReadRules(t *testing.T) {
	cams := []Camera{{"door", "a.mp4"}, {"aisle", "b.mp4"}}
	for _, tc := range []struct{ name, file, err string }{
		{"good", `{"rules": [{"camera": "door", "name": "dress", "categories": ["Dress"], "min_score": 0.7, "min_frames": 3, "cooldown": "30s"},
			{"name": "suit-like", "categories": ["Coat"]}]}`, ""},
		{"syntax error names the line", "{\"rules\": [\n{\"name\": \"dress\",\n \"categories\": [\"Dress\"]\n,}]}", "line 4"},
		{"unknown field", `{"rules": [{"name": "dress", "category": ["Dress"]}]}`, `unknown field "category"`},
		{"wrong type names the line", "{\"rules\": [\n{\"name\": \"dress\", \"categories\": \"Dress\"}]}", "line 2: rules.categories should be []string"},
		{"no rules", `{"rules": []}`, "holds no rules"},
		{"unknown camera", `{"rules": [{"camera": "till", "name": "dress", "categories": ["Dress"]}]}`, `names camera "till", which is not one of the cameras (door, aisle)`},
		{"score out of range", `{"rules": [{"name": "dress", "categories": ["Dress"], "min_score": 1.5}]}`, "min_score 1.5 is outside [0, 1]"},
		{"bad cooldown", `{"rules": [{"name": "dress", "categories": ["Dress"], "cooldown": "soon"}]}`, `cooldown "soon"`},
		{"duplicate name", `{"rules": [{"name": "d", "categories": ["Dress"]}, {"camera": "door", "name": "d", "categories": ["Coat"]}]}`, `camera "door" has two rules`},
		{"no categories", `{"rules": [{"name": "dress"}]}`, "needs 1 to 64 categories"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rules.json")
			os.WriteFile(path, []byte(tc.file), 0o644)
			rules, err := ReadRules(path)
			if err == nil {
				err = CheckRules(rules, cams)
			}
			if tc.err == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				cfg := DefaultConfig()
				cfg.Rules = rules
				door, aisle := cfg.rulesFor("door"), cfg.rulesFor("aisle")
				if len(door) != 2 || len(aisle) != 1 {
					t.Fatalf("got %d rules for door and %d for aisle, want 2 and 1", len(door), len(aisle))
				}
				if r := door[0]; r.MinScore != 0.7 || r.MinConsecutiveFrames != 3 || r.Cooldown.AsDuration() != 30*time.Second {
					t.Errorf("door's dress rule %v, want min_score 0.7, 3 frames, cooldown 30s", r)
				}
				if r := aisle[0]; r.MinScore != float32(cfg.AlertScore) || r.MinConsecutiveFrames != cfg.AlertFrames {
					t.Errorf("aisle's rule %v, want the defaults", r)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got error %v, want one containing %q", err, tc.err)
			}
		})
	}
	if _, err := ReadRules(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: got %v, want a no-such-file error", err)
	}
}

func TestConfigCheck(t *testing.T) {
	base := DefaultConfig()
	base.Cameras = []Camera{{"door", "a.mp4"}}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		err  string
	}{
		{"fine", func(*Config) {}, ""},
		{"no camera", func(c *Config) { c.Cameras = nil }, "no camera"},
		{"twice", func(c *Config) { c.Cameras = append(c.Cameras, Camera{"door", "b.mp4"}) }, "given twice"},
		{"fps", func(c *Config) { c.FPS = 0 }, "--fps"},
		{"view fps", func(c *Config) { c.ViewFPS = 100 }, "--view-fps"},
		{"fps NaN", func(c *Config) { c.FPS = math.NaN() }, "--fps"},
		{"alert score above 1", func(c *Config) { c.AlertScore = 1.5 }, "--alert-score"},
		{"min score NaN", func(c *Config) { c.MinScore = math.NaN() }, "--min-score"},
		{"negative cooldown", func(c *Config) { c.Cooldown = -time.Second }, "--cooldown"},
		{"no tally window", func(c *Config) { c.TallyWindow = 0 }, "--tally-window"},
		{"tally window over a day", func(c *Config) { c.TallyWindow = 25 * time.Hour }, "--tally-window"},
		{"negative history", func(c *Config) { c.History = -time.Minute }, "--history"},
		{"history under a second", func(c *Config) { c.History = time.Millisecond }, "--history"},
		{"rule name too long", func(c *Config) {
			c.Rules = []Rule{{Name: strings.Repeat("x", 257), Categories: []string{"Dress"}}}
		}, "over the limit of 256"},
		{"empty category", func(c *Config) { c.Rules = []Rule{{Name: "dress", Categories: []string{"Dress", ""}}} }, "a category is empty"},
		{"TLS certificate without key", func(c *Config) { c.TLSCert = "page.pem" }, "--listen-tls-cert needs --listen-tls-key, which is missing"},
		{"TLS key without certificate", func(c *Config) { c.TLSKey = "page.key" }, "--listen-tls-key needs --listen-tls-cert, which is missing"},
		{"TLS pair", func(c *Config) { c.TLSCert, c.TLSKey = "page.pem", "page.key" }, ""},
		{"no pages", func(c *Config) { c.MaxPages = 0 }, "--max-pages must be in [1, 1024], not 0"},
		{"too many pages", func(c *Config) { c.MaxPages = 1025 }, "--max-pages must be in [1, 1024], not 1025"},
		{"most pages", func(c *Config) { c.MaxPages = 1024 }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.edit(&c)
			err := c.Check()
			if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("got %v, want error containing %q", err, tc.err)
			}
		})
	}
}
