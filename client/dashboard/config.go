package dashboard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Camera is one camera the dashboard streams: a name (the stream's camera id) and a
// source, a video file, a folder of images or an MJPEG file, read in a loop.
type Camera struct {
	Name   string `json:"name"`
	Source string `json:"source"`
}

// Rule is an alert rule for one camera, or for every camera when Camera is empty.
type Rule struct {
	Camera     string   `json:"camera,omitempty"`
	Name       string   `json:"name"`
	Categories []string `json:"categories"`
	// MinScore is the lowest score that counts as seeing a category; nil means the
	// configuration's default.
	MinScore *float64 `json:"min_score,omitempty"`
	// MinFrames is how many frames in a row must show it; 0 means the default.
	MinFrames uint32 `json:"min_frames,omitempty"`
	// Cooldown is the quiet time after an alert ("30s"); empty means the default.
	Cooldown string `json:"cooldown,omitempty"`
}

// DefaultRules are the demo's rules, the seed's two examples: a dress, and a
// suit-like garment (Fashion-MNIST has no suit; its tailored outer garment is the coat).
var DefaultRules = []Rule{
	{Name: "dress", Categories: []string{"Dress"}},
	{Name: "suit-like", Categories: []string{"Coat"}},
}

// Config is what the dashboard shows and how it streams.
type Config struct {
	// Addr is the server address, for the page and the log.
	Addr    string
	Cameras []Camera
	// Rules are checked on every camera they name (all, when a rule names none).
	Rules []Rule
	// RulesProblem is why the rule file could not be used; the page and the log say
	// so and the cameras run without its rules.
	RulesProblem string
	// FPS is the rate each camera's frames are read and sent at.
	FPS float64
	// ViewFPS caps the frames a second sent to each browser per camera.
	ViewFPS float64
	// MinScore drops detections below it; AlertScore, AlertFrames and Cooldown are
	// the rules' defaults.
	MinScore    float64
	AlertScore  float64
	AlertFrames uint32
	Cooldown    time.Duration
	// TallyWindow is the window each camera's tallies cover.
	TallyWindow time.Duration
	// History is how much tally history the charts keep.
	History time.Duration
	// TLSCert and TLSKey, both or neither, serve the page over HTTPS (TLS 1.2 or later)
	// with this PEM certificate chain and key, re-read when they change.
	TLSCert, TLSKey string
	// UsersFile is an htpasswd file of bcrypt hashes (htpasswd -B); with it every
	// path of the page needs one of its logins (HTTP Basic). Re-read when it changes.
	UsersFile string
	// LoginAttemptsPerMinute bounds the logins from one client address (its IPv4
	// address or IPv6 /64) that need a bcrypt check: a burst of this many, then this
	// many a minute; a successful one is given back, so in effect it bounds the failed
	// ones. Over it: 429 with Retry-After, without a bcrypt check. Logins remembered
	// from a successful check are never limited. 0 turns the limit off. Behind a
	// reverse proxy every client has the proxy's address.
	LoginAttemptsPerMinute int
	// MaxPages caps the pages open at once (their event streams); one more gets 503
	// until one closes.
	MaxPages int
	Log      *slog.Logger
}

// DefaultConfig returns the defaults the CLI's flags show.
func DefaultConfig() Config {
	return Config{FPS: 10, ViewFPS: 5, MinScore: 0.5, AlertScore: 0.6, AlertFrames: 2,
		Cooldown: 10 * time.Second, TallyWindow: 5 * time.Minute, History: 10 * time.Minute, MaxPages: 32,
		LoginAttemptsPerMinute: 10}
}

var cameraName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ParseCamera reads NAME=SOURCE.
func ParseCamera(v string) (Camera, error) {
	name, src, ok := strings.Cut(v, "=")
	if !ok || src == "" {
		return Camera{}, fmt.Errorf("want NAME=SOURCE (a video file, a folder of images or an MJPEG file), got %q", v)
	}
	if !cameraName.MatchString(name) {
		return Camera{}, fmt.Errorf("camera name %q: use 1 to 64 letters, digits, '.', '_' or '-'", name)
	}
	return Camera{Name: name, Source: src}, nil
}

// ParseRule reads [CAMERA:]NAME=CATEGORY[,CATEGORY...].
func ParseRule(v string) (Rule, error) {
	head, cats, ok := strings.Cut(v, "=")
	if !ok || head == "" || cats == "" {
		return Rule{}, fmt.Errorf("want [CAMERA:]NAME=CATEGORY[,CATEGORY...], got %q", v)
	}
	r := Rule{Name: head}
	if cam, name, ok := strings.Cut(head, ":"); ok {
		r.Camera, r.Name = cam, name
	}
	for _, c := range strings.Split(cats, ",") {
		if c = strings.TrimSpace(c); c != "" {
			r.Categories = append(r.Categories, c)
		}
	}
	return r, nil
}

// ruleFile is the rule file's shape.
type ruleFile struct {
	Rules []Rule `json:"rules"`
}

// ReadRules reads a rule file: JSON, {"rules": [{"camera": "door", "name": "dress",
// "categories": ["Dress"], "min_score": 0.7, "min_frames": 3, "cooldown": "30s"}]}.
// Errors name the file and, for syntax errors, the line.
func ReadRules(path string) ([]Rule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rule file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f ruleFile
	if err := dec.Decode(&f); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("rule file %s, line %d: %v", path, lineOf(data, se.Offset), err)
		case errors.As(err, &te):
			return nil, fmt.Errorf("rule file %s, line %d: %s should be %v, not a JSON %s", path, lineOf(data, te.Offset), te.Field, te.Type, te.Value)
		}
		return nil, fmt.Errorf("rule file %s: %v", path, strings.TrimPrefix(err.Error(), "json: "))
	}
	if len(f.Rules) == 0 {
		return nil, fmt.Errorf("rule file %s holds no rules (want {\"rules\": [{\"name\": ..., \"categories\": [...]}]})", path)
	}
	return f.Rules, nil
}

func lineOf(data []byte, offset int64) int {
	return 1 + bytes.Count(data[:min(int(offset), len(data))], []byte("\n"))
}

// maxHistory bounds --history: every page gets the whole history when it opens, one
// sample a second.
const maxHistory = 24 * time.Hour

// atelierd's limits on a rule's name or category and on a tally window
// (stream.MaxNameBytes, stream.MaxTallyWindow).
const (
	maxName        = 256
	maxTallyWindow = 24 * time.Hour
)

// maxMaxPages bounds --max-pages: each open page holds a goroutine, a queue of 64
// events and a connection.
const maxMaxPages = 1024

// Check validates the configuration: distinct camera names, rates, scores, durations,
// the page cap and the login limit in range, TLS files in pairs, and rules that name
// known cameras, have categories, scores in [0, 1] and at most 16 per camera. It
// refuses at start-up whatever atelierd would refuse in every stream (a tally window
// over 24 h, a negative cooldown, a score above 1): let through, each camera would
// retry a stream that can never open.
func (c Config) Check() error {
	if len(c.Cameras) == 0 {
		return errors.New("no camera: give at least one --camera NAME=SOURCE")
	}
	seen := map[string]bool{}
	for _, cam := range c.Cameras {
		if seen[cam.Name] {
			return fmt.Errorf("camera %q is given twice", cam.Name)
		}
		seen[cam.Name] = true
	}
	inUnit := func(v float64) bool { return v >= 0 && v <= 1 } // false for NaN too
	switch {
	case !(c.FPS > 0 && c.FPS <= 60) || !(c.ViewFPS > 0 && c.ViewFPS <= 30):
		return fmt.Errorf("--fps must be in (0, 60] and --view-fps in (0, 30], not %v and %v", c.FPS, c.ViewFPS)
	case !inUnit(c.MinScore) || !inUnit(c.AlertScore):
		return fmt.Errorf("--min-score and --alert-score must be in [0, 1], not %v and %v", c.MinScore, c.AlertScore)
	case c.Cooldown < 0:
		return fmt.Errorf("--cooldown %v is negative", c.Cooldown)
	case c.TallyWindow <= 0 || c.TallyWindow > maxTallyWindow:
		return fmt.Errorf("--tally-window must be in (0, %v], not %v", maxTallyWindow, c.TallyWindow)
	case c.History < time.Second || c.History > maxHistory:
		return fmt.Errorf("--history must be in [1s, %v], not %v", maxHistory, c.History)
	case c.TLSCert != "" && c.TLSKey == "":
		return errors.New("--listen-tls-cert needs --listen-tls-key, which is missing")
	case c.TLSKey != "" && c.TLSCert == "":
		return errors.New("--listen-tls-key needs --listen-tls-cert, which is missing")
	case c.MaxPages < 1 || c.MaxPages > maxMaxPages:
		return fmt.Errorf("--max-pages must be in [1, %d], not %d", maxMaxPages, c.MaxPages)
	case c.LoginAttemptsPerMinute < 0:
		return fmt.Errorf("--login-attempts-per-minute must be 0 (no limit) or more, not %d", c.LoginAttemptsPerMinute)
	}
	return CheckRules(c.Rules, c.Cameras)
}

// CheckRules validates rules against the cameras they apply to.
func CheckRules(rules []Rule, cameras []Camera) error {
	names := make([]string, len(cameras))
	for i, cam := range cameras {
		names[i] = cam.Name
	}
	perCamera := map[string]map[string]bool{}
	for i, r := range rules {
		what := fmt.Sprintf("rule %d (%q)", i+1, r.Name)
		switch {
		case r.Name == "":
			return fmt.Errorf("rule %d has no name", i+1)
		case len(r.Name) > maxName:
			return fmt.Errorf("rule %d: a name of %d bytes is over the limit of %d", i+1, len(r.Name), maxName)
		case len(r.Categories) == 0 || len(r.Categories) > 64:
			return fmt.Errorf("%s needs 1 to 64 categories, has %d", what, len(r.Categories))
		case slices.ContainsFunc(r.Categories, func(c string) bool { return c == "" || len(c) > maxName }):
			return fmt.Errorf("%s: a category is empty or over %d bytes", what, maxName)
		case r.MinScore != nil && !(*r.MinScore >= 0 && *r.MinScore <= 1):
			return fmt.Errorf("%s: min_score %v is outside [0, 1]", what, *r.MinScore)
		case r.Camera != "" && !slices.Contains(names, r.Camera):
			return fmt.Errorf("%s names camera %q, which is not one of the cameras (%s)", what, r.Camera, strings.Join(names, ", "))
		}
		if r.Cooldown != "" {
			if d, err := time.ParseDuration(r.Cooldown); err != nil || d < 0 {
				return fmt.Errorf("%s: cooldown %q is not a duration such as \"30s\"", what, r.Cooldown)
			}
		}
		for _, cam := range names {
			if r.Camera != "" && r.Camera != cam {
				continue
			}
			if perCamera[cam] == nil {
				perCamera[cam] = map[string]bool{}
			}
			if perCamera[cam][r.Name] {
				return fmt.Errorf("%s: camera %q has two rules of that name", what, cam)
			}
			perCamera[cam][r.Name] = true
			if len(perCamera[cam]) > 16 {
				return fmt.Errorf("camera %q has more than 16 rules", cam)
			}
		}
	}
	return nil
}
