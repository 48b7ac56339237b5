package testenv

import (
	"bytes"
	"sync"
)

// Buffer collects a log or an output that a test reads while a server, a command's
// process or a goroutine still writes it; a bytes.Buffer read that way is a data race
// (go test -race reports it).
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what has been written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
