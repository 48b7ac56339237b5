package clustertest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// pyReport is what load.py prints.
type pyReport struct {
	Calls    int      `json:"calls"`
	OK       int      `json:"ok"`
	Failures []string `json:"failures"`
}

// startPython starts cmd (load.py) and returns once it says "ready" on stderr; wait
// returns its report when it exits.
func startPython(t *testing.T, cmd *exec.Cmd) (wait func() pyReport) {
	t.Helper()
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	var log strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
				continue
			}
			log.WriteString(sc.Text() + "\n")
		}
	}()
	select {
	case <-ready:
	case <-done:
		cmd.Wait()
		t.Fatalf("load.py ended before it was ready:\n%s", log.String())
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("load.py not ready after 60s")
	}
	return func() pyReport {
		t.Helper()
		<-done
		if err := cmd.Wait(); err != nil {
			t.Fatalf("load.py: %v\n%s", err, log.String())
		}
		var r pyReport
		if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
			t.Fatalf("load.py printed %q: %v", stdout.String(), err)
		}
		return r
	}
}
