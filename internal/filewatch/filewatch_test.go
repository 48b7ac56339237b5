package filewatch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWatcherSeesWritesRenamesAndTriggers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	os.WriteFile(path, []byte("one"), 0o600)
	calls := make(chan struct{}, 10)
	w := New(5*time.Millisecond, func() { calls <- struct{}{} }, path)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	expect := func(what string) {
		t.Helper()
		select {
		case <-calls:
		case <-time.After(2 * time.Second):
			t.Fatalf("no call after %s", what)
		}
	}
	// Run has looked at the file once it answers a Trigger (a sleep here could end
	// before Run starts, and the write below would then be what Run first sees).
	w.Trigger()
	expect("the first Trigger")
	os.WriteFile(path, []byte("two!"), 0o600)
	expect("a write")
	os.WriteFile(path+".new", []byte("two!"), 0o600)
	os.Rename(path+".new", path) // same size, new inode
	expect("a rename over the file")
	w.Trigger()
	expect("Trigger")
	select {
	case <-calls:
		t.Fatal("a call with nothing changed")
	case <-time.After(50 * time.Millisecond):
	}
}
