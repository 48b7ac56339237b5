// Package filewatch calls a function when any of a few files changes. It polls each
// file's size, modification time and inode, so it follows editors that write in place
// and tools that rename a new file over the old one (Kubernetes secret volumes swap a
// symbolic link); Trigger forces a call, for SIGHUP.
package filewatch

import (
	"context"
	"os"
	"syscall"
	"time"
)

// DefaultInterval is how often the files are looked at.
const DefaultInterval = 250 * time.Millisecond

// Watcher watches Paths and calls OnChange (from one goroutine) when one changes.
type Watcher struct {
	Paths    []string
	Interval time.Duration
	OnChange func()
	trigger  chan struct{}
}

// New returns a watcher of paths; call Run to start it.
func New(interval time.Duration, onChange func(), paths ...string) *Watcher {
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Watcher{Paths: paths, Interval: interval, OnChange: onChange, trigger: make(chan struct{}, 1)}
}

// Trigger makes Run call OnChange soon, whether or not a file changed.
func (w *Watcher) Trigger() {
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

type stamp struct {
	size  int64
	mod   time.Time
	inode uint64
	err   bool
}

func (w *Watcher) stamps() []stamp {
	out := make([]stamp, len(w.Paths))
	for i, p := range w.Paths {
		fi, err := os.Stat(p)
		if err != nil {
			out[i] = stamp{err: true}
			continue
		}
		out[i] = stamp{size: fi.Size(), mod: fi.ModTime()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			out[i].inode = st.Ino
		}
	}
	return out
}

// Run polls until ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	last := w.stamps()
	t := time.NewTicker(w.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.trigger:
			last = w.stamps()
			w.OnChange()
		case <-t.C:
			now := w.stamps()
			changed := false
			for i := range now {
				changed = changed || now[i] != last[i]
			}
			if changed {
				last = now
				w.OnChange()
			}
		}
	}
}
