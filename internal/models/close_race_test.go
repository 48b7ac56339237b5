package models

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/precision"
	"github.com/atelier-vision/atelier/internal/tensor"
	"github.com/atelier-vision/atelier/internal/testenv"
)

// countingEngine counts its Close calls.
type countingEngine struct {
	tensor.Engine
	closes atomic.Int32
}

func (e *countingEngine) Close() error {
	e.closes.Add(1)
	return e.Engine.Close()
}

// closeFixture starts a manager on classifier/1 whose engines count their closes.
func closeFixture(t *testing.T) (*Manager, *testenv.Buffer, func() []*countingEngine) {
	t.Helper()
	root := t.TempDir()
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	fl := &fakeLoader{}
	var mu sync.Mutex
	var engines []*countingEngine
	log := &testenv.Buffer{}
	m, err := NewManager(ManagerOptions{Root: root, Settle: time.Millisecond, Log: slog.New(slog.NewTextHandler(log, nil)),
		Load: func(dir string, s precision.Setting) (Loaded, error) {
			l, err := fl.load(dir, s)
			if err == nil {
				e := &countingEngine{Engine: l.Engine}
				mu.Lock()
				engines = append(engines, e)
				mu.Unlock()
				l.Engine = e
			}
			return l, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m, log, func() []*countingEngine {
		mu.Lock()
		defer mu.Unlock()
		return append([]*countingEngine(nil), engines...)
	}
}

// TestAdminCallsAfterCloseStartNothing: Close has closed every version, so an
// UnloadModel, a rescan or a label change that comes after it (an admin RPC the
// server's grace period let run on, a poll under way at SIGTERM) must not retire a
// version again: that started an unload goroutine after Close had waited for them
// all, and closed the engine a second time.
func TestAdminCallsAfterCloseStartNothing(t *testing.T) {
	m, log, engines := closeFixture(t)
	m.Close()
	// The folder goes too, so that a rescan would retire the version as well.
	os.RemoveAll(filepath.Join(m.opts.Root, "classifier"))
	_ = m.UnloadModel("classifier", 1)
	_, _ = m.scan()
	m.wg.Wait() // whatever the calls above started
	es := engines()
	if len(es) != 1 {
		t.Fatalf("%d engines loaded, want 1", len(es))
	}
	if n := es[0].closes.Load(); n != 1 {
		t.Errorf("engine closed %d times, want once (by Close)", n)
	}
	if strings.Contains(log.String(), "model version unloading") {
		t.Errorf("a version was retired after Close:\n%s", log.String())
	}
}

// TestCloseRacingAdminCalls runs Close while UnloadModel and rescans run. Under
// -race, a retire that starts its goroutine (wg.Add) while Close waits on the same
// WaitGroup is reported; in any build every engine must be closed exactly once and
// nothing may still be running once Close returns.
func TestCloseRacingAdminCalls(t *testing.T) {
	for range 20 {
		m, _, engines := closeFixture(t)
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			_ = m.UnloadModel("classifier", 1)
		})
		wg.Go(func() {
			<-start
			_, _ = m.scan()
		})
		wg.Go(func() {
			<-start
			m.Close()
		})
		close(start)
		wg.Wait()
		m.Close()
		m.wg.Wait()
		for _, e := range engines() {
			if n := e.closes.Load(); n != 1 {
				t.Fatalf("engine closed %d times, want once", n)
			}
		}
	}
}
