package errkind

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestSentinelsMatchTheirKindOnly(t *testing.T) {
	tooLarge := New(Invalid, "image too large")
	err := fmt.Errorf("image 3: %w: 9000x9000", tooLarge)
	if !errors.Is(err, tooLarge) || !errors.Is(err, Invalid) {
		t.Fatalf("%v: want it to match its sentinel and Invalid", err)
	}
	for _, other := range []error{NotFound, FailedPrecondition, Overloaded, Unavailable, Unauthenticated, PermissionDenied, Unimplemented} {
		if errors.Is(err, other) {
			t.Fatalf("%v matches %v, want only Invalid", err, other)
		}
	}
	if got, want := err.Error(), "image 3: image too large: 9000x9000"; got != want {
		t.Fatalf("got message %q, want %q (the sentinel's own text, not the kind's)", got, want)
	}
}

func TestNewfKeepsItsOwnMessage(t *testing.T) {
	err := Newf(PermissionDenied, "role %s may not call %s", "infer", "/a.B/C")
	if !errors.Is(err, PermissionDenied) || errors.Is(err, Unauthenticated) {
		t.Fatalf("%v: want it to match PermissionDenied only", err)
	}
	if got, want := err.Error(), "role infer may not call /a.B/C"; got != want {
		t.Fatalf("got message %q, want %q (no kind prefix)", got, want)
	}
}

func TestNewRefusesANonKind(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New with a plain error did not panic")
		}
	}()
	New(errors.New("not a kind"), "x")
}

func TestRecoverTurnsAPanicIntoAnError(t *testing.T) {
	run := func() (err error) {
		defer Recover(&err)
		panic("boom")
	}
	err := run()
	var p *Panic
	if !errors.As(err, &p) || p.Value != "boom" || !strings.Contains(string(p.Stack), "TestRecoverTurnsAPanicIntoAnError") {
		t.Fatalf("got %v, want a *Panic with the value and the stack", err)
	}
}
