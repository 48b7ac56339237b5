package admission

import (
	"strconv"
	"testing"
	"time"
)

func TestTokenBucket(t *testing.T) {
	c := New(Config{Rate: 2, Burst: 3})
	now := time.Unix(0, 0)
	c.now = func() time.Time { return now }
	for i := range 3 {
		if ok, _ := c.Allow("a"); !ok {
			t.Fatalf("call %d within the burst refused", i)
		}
	}
	ok, wait := c.Allow("a")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("fourth call: got %v, wait %v; want refused, wait 500ms", ok, wait)
	}
	if ok, _ := c.Allow("b"); !ok {
		t.Fatal("another caller was limited")
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := c.Allow("a"); !ok {
		t.Fatal("refused after the wait it was told")
	}
	if ok, _ := c.Allow("a"); ok {
		t.Fatal("allowed beyond the refill")
	}
}

func TestStreamCap(t *testing.T) {
	c := New(Config{MaxStreams: 2})
	r1, ok1 := c.OpenStream("a")
	_, ok2 := c.OpenStream("a")
	_, ok3 := c.OpenStream("a")
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("got %v %v %v, want two streams then a refusal", ok1, ok2, ok3)
	}
	if _, ok := c.OpenStream("b"); !ok {
		t.Fatal("another caller was capped")
	}
	r1()
	r1() // twice is once
	if _, ok := c.OpenStream("a"); !ok {
		t.Fatal("a released stream did not free its place")
	}
	if _, ok := c.OpenStream("a"); ok {
		t.Fatal("a double release freed two places")
	}
}

func TestOffAdmitsAll(t *testing.T) {
	var c *Controller
	if ok, _ := c.Allow("a"); !ok {
		t.Fatal("nil controller refused")
	}
	if _, ok := New(Config{}).OpenStream("a"); !ok {
		t.Fatal("zero config capped streams")
	}
}

// TestFloodOfBusyCallersSweepsRarely fills the map past maxCallers with callers that
// have all just spent their burst, so no sweep can drop them, then adds as many again:
// each new caller must not walk the whole map.
func TestFloodOfBusyCallersSweepsRarely(t *testing.T) {
	c := New(Config{Rate: 1, Burst: 1})
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	for i := range 2*maxCallers + 10 {
		if ok, _ := c.Allow(strconv.Itoa(i)); !ok {
			t.Fatalf("caller %d was refused its first call", i)
		}
	}
	if c.sweeps > 2 {
		t.Fatalf("%d sweeps for %d new busy callers, want at most 2", c.sweeps, 2*maxCallers+10)
	}
	// Once they are idle, the next sweep drops them and the threshold comes back down.
	for i, sweeps := 0, c.sweeps; c.sweeps == sweeps; i++ {
		now = now.Add(time.Minute)
		c.Allow("late" + strconv.Itoa(i))
	}
	if len(c.callers) > 1 || c.sweepAt != maxCallers {
		t.Fatalf("%d buckets kept and the next sweep at %d after the callers went idle, want 1 and %d", len(c.callers), c.sweepAt, maxCallers)
	}
}

func TestCallerKeyGroupsAnIPv6Host(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":               "192.0.2.7",
		"2001:db8:1:2:aaaa::1":    "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:1:2:3": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":         "2001:db8:1:3::/64",
		"::ffff:192.0.2.7":        "::ffff:192.0.2.7",
		"fe80::1%eth0":            "fe80::/64",
		"not an address":          "not an address",
	} {
		if got := CallerKey(in); got != want {
			t.Errorf("CallerKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRefund: a refunded call can be taken again, and the bucket never grows past
// its burst; a refund to an off or nil controller, or to an unknown key, does nothing.
func TestRefund(t *testing.T) {
	c := New(Config{Rate: 1, Burst: 2})
	now := time.Unix(0, 0)
	c.now = func() time.Time { return now }
	c.Allow("a")
	c.Allow("a")
	if ok, _ := c.Allow("a"); ok {
		t.Fatal("allowed beyond the burst")
	}
	c.Refund("a")
	if ok, _ := c.Allow("a"); !ok {
		t.Fatal("a refunded call was refused")
	}
	for range 5 {
		c.Refund("a")
	}
	for i := range 2 {
		if ok, _ := c.Allow("a"); !ok {
			t.Fatalf("call %d after refunds refused", i)
		}
	}
	if ok, _ := c.Allow("a"); ok {
		t.Fatal("refunds grew the bucket past its burst")
	}
	c.Refund("unknown")
	if _, ok := c.callers["unknown"]; ok {
		t.Fatal("a refund to an unknown key made a bucket")
	}
	var off *Controller
	off.Refund("a")
	New(Config{}).Refund("a")
}

// TestAllowAt: a caller's own clock drives the bucket; a time before the last call
// neither refills nor drains it.
func TestAllowAt(t *testing.T) {
	c := New(Config{Rate: 1, Burst: 1})
	t0 := time.Unix(100, 0)
	if ok, _ := c.AllowAt("a", t0); !ok {
		t.Fatal("first call refused")
	}
	if ok, wait := c.AllowAt("a", t0.Add(-time.Hour)); ok || wait != time.Second {
		t.Fatalf("a call at an earlier time: %v, wait %v; want refused, wait 1s", ok, wait)
	}
	if ok, _ := c.AllowAt("a", t0.Add(time.Second)); !ok {
		t.Fatal("refused a second later")
	}
}
