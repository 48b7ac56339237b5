package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/atelier-vision/atelier/internal/testenv"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// TestBinaryPollsAndReloadsOnSIGHUP runs the built atelierd on a copy of the
// classifier with --model-poll-interval 250ms. A version renamed into the folder is
// loaded by the polls alone (no RPC asks for it). A config with a label, then SIGHUP:
// the label is in GetModelStatus. A config with an error, then SIGHUP: the refusal is
// logged and the labels stay as they were.
func TestBinaryPollsAndReloadsOnSIGHUP(t *testing.T) {
	src := filepath.Join(testenv.ModelDir(t, "classifier"), "classifier", "1")
	root := t.TempDir()
	copyDir(t, src, filepath.Join(root, "classifier", "1"))
	conf := filepath.Join(t.TempDir(), "models.conf")
	writeConf := func(text string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("# no labels yet\n")
	cmd, addr, logs := startBinary(t, "--model-dir", root, "--model-poll-interval", "250ms", "--model-config", conf)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if got := states(t, conn, "classifier"); got != "AVAILABLE@1" {
		t.Fatalf("at start: states %q, want AVAILABLE@1", got)
	}

	staging := filepath.Join(root, "classifier", ".staging-2")
	copyDir(t, src, staging)
	if err := os.Rename(staging, filepath.Join(root, "classifier", "2")); err != nil {
		t.Fatal(err)
	}
	waitStates(t, conn, "classifier", "AVAILABLE@2")
	if !strings.Contains(logs.String(), `msg="model version available" model=classifier version=2`) {
		t.Errorf("no log line of version 2 becoming available:\n%s", logs.String())
	}

	labels := func() map[string]int64 {
		t.Helper()
		resp, err := pb.NewModelServiceClient(conn).GetModelStatus(ctxFor(t, 10*time.Second), &pb.GetModelStatusRequest{Name: "classifier"})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Models[0].VersionLabels
	}
	hup := func() {
		t.Helper()
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("model classifier\n  label stable 2\n")
	hup()
	for deadline := time.Now().Add(30 * time.Second); labels()["stable"] != 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("labels %v 30 s after SIGHUP, want stable=2\n%s", labels(), logs.String())
		}
	}

	const refused = `msg="reload on SIGHUP refused; the old config stays"`
	writeConf("model classifier\n  label stable 2\n  policy newest\n")
	hup()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(logs.String(), refused); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s line 30 s after SIGHUP with a bad config:\n%s", refused, logs.String())
		}
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, refused) && !strings.Contains(line, "models.conf:3") {
			t.Errorf("the refusal does not name the file and line: %s", line)
		}
	}
	if got := labels(); len(got) != 1 || got["stable"] != 2 {
		t.Errorf("labels %v after a refused config, want stable=2 only", got)
	}
	if got := states(t, conn, "classifier"); got != "AVAILABLE@2" {
		t.Errorf("states %q after a refused config, want AVAILABLE@2", got)
	}
}
