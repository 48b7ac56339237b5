package dashboard

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// ruleDashboard runs a dashboard of one camera, door, with rules, against fake.
func ruleDashboard(t *testing.T, fake *fakeServer, rules ...Rule) (*Dashboard, *logBuffer) {
	t.Helper()
	c := fastClient(t, fake.addr)
	t.Cleanup(func() { c.Close() }) // after the dashboard stops (cleanups run last first)
	log := &logBuffer{}
	cfg := DefaultConfig()
	cfg.Addr, cfg.FPS, cfg.Log, cfg.Rules = fake.addr, 20, log.logger(), rules
	cfg.Cameras = []Camera{{"door", writeFrames(t, 5)}}
	d, _ := runDashboard(t, c, cfg)
	return d, log
}

// waitDoor waits up to 10 s for camera door's status to be what ok wants, and returns
// the state then.
func waitDoor(t *testing.T, d *Dashboard, what string, ok func(camStatus) bool) state {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := d.snapshot(time.Now(), false)
		if ok(s.Cameras["door"]) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("camera door is %+v after 10 s, want %s", s.Cameras["door"], what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// streamRuleNames returns the rule names of the streams the fake saw opened, the
// last last.
func streamRuleNames(f *fakeServer) [][]string {
	var out [][]string
	for _, sc := range f.streamConfigs() {
		var names []string
		for _, r := range sc.Options.AlertRules {
			names = append(names, r.Name)
		}
		out = append(out, names)
	}
	return out
}

// TestRuleOfAnUnknownCategory: a rule whose category no model of atelierd knows
// ("Suit"; "dress" in lower case) would have atelierd refuse every stream it covers.
// The dashboard leaves it out of the streams, so the cameras run with the other
// rules, and the page and the log say which rule is off, why and what is known.
func TestRuleOfAnUnknownCategory(t *testing.T) {
	fake := startFake(t, "")
	d, log := ruleDashboard(t, fake, Rule{Name: "dress", Categories: []string{"Dress"}}, Rule{Name: "suit-like", Categories: []string{"Suit"}},
		Rule{Camera: "door", Name: "lower", Categories: []string{"Coat", "dress"}})
	s := waitDoor(t, d, "live, with 5 answers", func(c camStatus) bool { return c.State == camLive && c.Answered >= 5 })
	if names := streamRuleNames(fake); !slices.Equal(names[len(names)-1], []string{"dress"}) {
		t.Errorf("the live stream's rules are %v, want [dress] alone", names[len(names)-1])
	}
	if len(s.RuleProblems) != 2 {
		t.Fatalf("rule problems %q, want one for suit-like and one for lower", s.RuleProblems)
	}
	for i, want := range [][]string{
		{`"suit-like" (every camera) is off`, `category "Suit".`, "Known labels: T-shirt/top, ", "Coat", "full-body"},
		{`"lower" (camera door) is off`, `category "dress" (did you mean "Dress"?)`},
	} {
		for _, w := range want {
			if !strings.Contains(s.RuleProblems[i], w) {
				t.Errorf("rule problem %q lacks %q", s.RuleProblems[i], w)
			}
		}
		if !strings.Contains(log.String(), `msg="alert rule off"`) || !strings.Contains(log.String(), strings.ReplaceAll(want[0], `"`, `\"`)) {
			t.Errorf("the log lacks the problem %q:\n%s", want[0], log.String())
		}
	}
	if p := s.Cameras["door"].Problem; p != "" {
		t.Errorf("the live camera's problem %q, want none", p)
	}
}

// TestRefusedStreamIsNotRetried: when atelierd refuses a stream's set-up
// (INVALID_ARGUMENT) for a rule the dashboard could not check (its models list no
// labels), the same set-up would be refused again and again: the tile says
// "refused" with atelierd's reason, not "reconnecting", and the stream is not
// opened again until atelierd's models change.
func TestRefusedStreamIsNotRetried(t *testing.T) {
	shorten(t, &modelsEvery, 300*time.Millisecond)
	fake := startFake(t, "")
	fake.unlabelled.Store(true)
	d, log := ruleDashboard(t, fake, Rule{Name: "suit-like", Categories: []string{"Suit"}})
	waitDoor(t, d, "refused", func(c camStatus) bool { return c.State == camRefused })
	opened := len(fake.streamConfigs())
	time.Sleep(3 * time.Second) // backoff from 0.5 s would have tried 3 times more
	s := d.snapshot(time.Now(), false)
	if n := len(fake.streamConfigs()); n != opened {
		t.Errorf("%d streams opened in the 3 s after the refusal, want none", n-opened)
	}
	cam := s.Cameras["door"]
	if cam.State != camRefused || !strings.Contains(cam.Problem, `INVALID_ARGUMENT: alert rule 0 ("suit-like"): no model of this stream names the category "Suit"`) ||
		!strings.Contains(cam.Problem, "Not tried again until atelierd's models change") {
		t.Errorf("the camera is %+v, want refused with atelierd's reason", cam)
	}
	if s.Conn.State != connConnected {
		t.Errorf("connection %q, want connected", s.Conn.State)
	}
	if want := `msg="camera stream refused" camera=door`; !strings.Contains(log.String(), want) {
		t.Errorf("the log lacks %q:\n%s", want, log.String())
	}

	// atelierd's models change (they list their labels, here): the rule is left out
	// and the camera goes live.
	fake.unlabelled.Store(false)
	s = waitDoor(t, d, "live once the models changed", func(c camStatus) bool { return c.State == camLive })
	if p := s.RuleProblems; len(p) != 1 || !strings.Contains(p[0], `"suit-like" (every camera) is off`) {
		t.Errorf("rule problems %q, want suit-like's", p)
	}
}
