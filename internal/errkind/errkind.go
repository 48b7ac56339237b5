// Package errkind is Atelier's one error vocabulary. The core marks every error a
// client can act on with one of a few kinds, each a sentinel matched with errors.Is;
// the API edge (server/errors.go) maps each kind to one status code in one table. An
// error of no kind is internal: the client gets a generic message and the server log
// gets the details, once.
//
// A package that wants its own, more specific sentinel (imageio.ErrTooLarge, say)
// makes it with New, so that errors.Is matches both the sentinel and its kind while
// the message stays the sentinel's own.
package errkind

import (
	"fmt"
	"runtime/debug"
)

// The kinds. Each names what the client can do about the error.
var (
	// Invalid is a request that breaks the API's rules: a missing field, a value out
	// of range, an undecodable image. The message names the field and the limit.
	Invalid = &kind{"invalid request"}
	// NotFound is a model or version the server does not hold; the message names
	// what it does hold.
	NotFound = &kind{"not found"}
	// FailedPrecondition is a request the server understood but cannot serve in its
	// present state: a model asked to do what its role cannot.
	FailedPrecondition = &kind{"failed precondition"}
	// Overloaded is a request refused because a bounded queue is full; retry later.
	Overloaded = &kind{"overloaded"}
	// Unavailable is a request refused because what it needs is shutting down or
	// closed; another replica, or a retry after a moment, will serve it.
	Unavailable = &kind{"unavailable"}
	// Unauthenticated is a call without a valid credential: no token, an unknown or
	// revoked one, a malformed authorization header.
	Unauthenticated = &kind{"unauthenticated"}
	// PermissionDenied is a call whose credential is valid but whose role may not
	// call the method.
	PermissionDenied = &kind{"permission denied"}
	// Unimplemented is an RPC this server does not serve, or serves only when
	// configured to; the message says which.
	Unimplemented = &kind{"unimplemented"}
)

// kind is a sentinel that only its own pointer matches.
type kind struct{ text string }

func (k *kind) Error() string { return k.text }

// sentinel is a package's own named error of some kind.
type sentinel struct {
	text string
	kind *kind
}

func (s *sentinel) Error() string { return s.text }
func (s *sentinel) Unwrap() error { return s.kind }

// New returns a new sentinel error with the given text that also matches kind k
// (one of the kinds above) under errors.Is.
func New(k error, text string) error {
	kk, ok := k.(*kind)
	if !ok {
		panic(fmt.Sprintf("errkind.New: %v is not a kind", k))
	}
	return &sentinel{text: text, kind: kk}
}

// Newf is New for a message of its own made with fmt.Sprintf (no %w): an error of
// kind k whose message is that text alone, without the kind's name, as the API has
// always worded it (the guard's refusals, say).
func Newf(k error, format string, args ...any) error {
	return New(k, fmt.Sprintf(format, args...))
}

// Panic is the error a recovered panic becomes: internal, with the stack for the log.
type Panic struct {
	Value any
	Stack []byte
}

func (p *Panic) Error() string { return fmt.Sprintf("panic: %v", p.Value) }

// Recover turns a panic into a *Panic in *err; defer it at the top of every goroutine
// that works for a request, so that one bad request cannot take the server down:
//
//	defer errkind.Recover(&err)
func Recover(err *error) {
	if r := recover(); r != nil {
		*err = &Panic{Value: r, Stack: debug.Stack()}
	}
}
