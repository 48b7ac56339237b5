package clustertest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
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

// startPython starts cmd (load.py or stream.py) and returns once it says "ready" on
// stderr; wait returns its report, the JSON it printed, decoded into report, when it
// exits. Each later line on stderr goes to line, if given, and is kept for the
// failure's message if line does not take it.
func startPython(t *testing.T, cmd *exec.Cmd, line func(string) bool) (wait func(report any)) {
	t.Helper()
	name := filepath.Base(cmd.Args[1])
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
			if line != nil && line(sc.Text()) {
				continue
			}
			log.WriteString(sc.Text() + "\n")
		}
	}()
	select {
	case <-ready:
	case <-done:
		cmd.Wait()
		t.Fatalf("%s ended before it was ready:\n%s", name, log.String())
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s not ready after 60s", name)
	}
	return func(report any) {
		t.Helper()
		<-done
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, log.String())
		}
		if err := json.Unmarshal(stdout.Bytes(), report); err != nil {
			t.Fatalf("%s printed %q: %v", name, stdout.String(), err)
		}
	}
}
