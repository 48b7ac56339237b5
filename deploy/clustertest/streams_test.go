package clustertest

import (
	"bufio"
	"context"
	"encoding/csv"
	"iter"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/internal/testenv"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// line is one line the CLI printed, and when.
type line struct {
	at   time.Time
	text string
}

// pyStream is one of stream.py's streams.
type pyStream struct {
	Results int     `json:"results"`
	Last    float64 `json:"last"`  // the last result's time, seconds since 1970
	Ended   float64 `json:"ended"` // when it failed, if it did
	Code    string  `json:"code"`
}

// streams kills the replica that serves the CLI's live stream (SIGKILL) while six Go
// streams and six Python ones are open too: the Go and Python streams on it end
// UNAVAILABLE, the others go on, and the CLI reconnects and resumes, answering every
// frame exactly once.
func streams(t *testing.T, c *cluster, l *goLoad) {
	const frames, fps = 150, 30
	// The Python streams first, two per replica by round robin: Python is slow to
	// start. Its calls do not say where they went: the replicas' counts of open
	// streams do, while they are the only streams.
	pyCmd := c.python("stream.py", c.target, c.image, "6", "5")
	pyStop, err := pyCmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pyWait := startPython(t, pyCmd, nil)
	defer pyStop.Close()
	pyOn := c.counts(streamsOpenSeries)
	if n := sum(pyOn); n != 6 {
		t.Fatalf("replicas have %v ClassifyStreams open, want the 6 Python ones", pyOn)
	}
	cli := c.cliCommand("stream", "--fps", strconv.Itoa(fps), "--output", "csv", "--reconnect", "20s", c.images(frames))
	var stderr testenv.Buffer // read while the CLI writes it
	cli.Stderr = &stderr
	stdout, err := cli.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lines []line
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, line{time.Now(), sc.Text()})
			mu.Unlock()
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(lines) }
	for deadline := time.Now().Add(15 * time.Second); count() < 10; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the CLI's stream printed %d lines in 15 s:\n%s", count(), stderr.String())
		}
	}
	victim := c.newStream(t, pyOn)

	// Six Go streams, two per replica by round robin, each recording its messages.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type goStream struct {
		results int
		err     error
		ended   time.Time
	}
	gs := make([]goStream, 6)
	var gmu sync.Mutex
	var wg sync.WaitGroup
	for i := range gs {
		wg.Go(func() {
			k := int32(1)
			err := l.c.ClassifyStream(withStreamID(ctx, i), &pb.ClassifyStreamConfig{TopK: &k}, paced(ctx, c.imageMsg, 20),
				func(*pb.ClassifyStreamResponse) error {
					gmu.Lock()
					gs[i].results++
					gmu.Unlock()
					return nil
				})
			gmu.Lock()
			gs[i].err, gs[i].ended = err, time.Now()
			gmu.Unlock()
		})
		// Opened 150 ms apart: the replicas' 3 s connection age sends GOAWAYs, and
		// streams opened all at once while the victim's connection was being remade
		// all went to the other replicas, leaving none to cut.
		time.Sleep(150 * time.Millisecond)
	}
	time.Sleep(time.Second)
	onVictim := 0
	for i := range gs {
		switch ip := l.counter.streamServer(i); ip {
		case "":
			t.Fatalf("Go stream %d has no server after 1 s", i)
		case victim:
			onVictim++
		}
	}
	if onVictim == 0 {
		t.Fatalf("no Go stream on %s, the CLI's replica", victim)
	}
	gmu.Lock()
	before := slices.Clone(gs)
	gmu.Unlock()

	killed := time.Now()
	c.replicas[victim].stop(syscall.SIGKILL)
	time.Sleep(1500 * time.Millisecond)
	c.publish(without(ips, victim)...)
	gmu.Lock()
	for i, s := range gs {
		onIt := l.counter.streamServer(i) == victim
		switch {
		case onIt && s.ended.IsZero():
			t.Errorf("Go stream %d on the killed replica still open 1.5 s later", i)
		case onIt && status.Code(s.err) != codes.Unavailable:
			t.Errorf("Go stream %d on the killed replica ended with %v, want UNAVAILABLE", i, s.err)
		case !onIt && !s.ended.IsZero():
			t.Errorf("Go stream %d on a live replica ended: %v", i, s.err)
		case !onIt && s.results <= before[i].results:
			t.Errorf("Go stream %d on a live replica got no result after the kill", i)
		}
	}
	gmu.Unlock()
	cancel()
	wg.Wait()

	checked := time.Now()
	pyStop.Close()
	var pys []pyStream
	pyWait(&pys)
	// The streams on the killed replica, as many as it had open, end UNAVAILABLE
	// after the kill; the others go on.
	pyOnVictim, pyEnded := pyOn[victim], 0
	for i, s := range pys {
		ended := time.Unix(0, int64(s.Ended*1e9))
		switch {
		case s.Code == "UNAVAILABLE" && ended.After(killed) && ended.Before(checked):
			pyEnded++
		case s.Code != "":
			t.Errorf("Python stream %d ended with %q at %v (the kill at %v), want UNAVAILABLE after the kill or still open",
				i, s.Code, ended.Format(time.StampMilli), killed.Format(time.StampMilli))
		case time.Unix(0, int64(s.Last*1e9)).Before(killed):
			t.Errorf("Python stream %d, still open, got no result after the kill", i)
		}
	}
	if pyOnVictim == 0 {
		t.Errorf("no Python stream on %s, the CLI's replica: open streams by replica %v", victim, pyOn)
	}
	if pyEnded != pyOnVictim {
		t.Errorf("%d Python streams ended UNAVAILABLE within 1.5 s of the kill, want the %d on the killed replica: %+v", pyEnded, pyOnVictim, pys)
	}

	withTimeout(t, 30*time.Second, "the CLI's stream", func() { <-printed; err = cli.Wait() })
	if err != nil {
		t.Fatalf("atelier stream: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "UNAVAILABLE") || !strings.Contains(stderr.String(), "reconnecting from frame") {
		t.Errorf("the CLI did not say it reconnected:\n%s", stderr.String())
	}
	gap := checkFrames(t, lines, frames, killed)
	t.Logf("measured: SIGKILL under live streams: %d of 6 Go streams were on the replica and ended UNAVAILABLE, the rest went on; "+
		"%d of %d Python streams were on it, %d ended UNAVAILABLE within 1.5 s, the rest went on; "+
		"the CLI's stream (%d frames at %d fps) resumed with every frame answered once, longest pause between results %v; CLI said: %s",
		onVictim, pyOnVictim, len(pys), pyEnded, frames, fps, gap.Round(time.Millisecond), strings.TrimSpace(stderr.String()))

	c.start(victim)
	c.publish(ips...)
}

// checkFrames wants one result row per frame id 1..frames, none failed, and returns
// the longest pause between rows after killed.
func checkFrames(t *testing.T, lines []line, frames int, killed time.Time) time.Duration {
	t.Helper()
	var text strings.Builder
	for _, l := range lines {
		text.WriteString(l.text + "\n")
	}
	rows, err := csv.NewReader(strings.NewReader(text.String())).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("CLI output is not CSV (%v):\n%s", err, text.String())
	}
	head := rows[0]
	col := func(name string) int { return slices.Index(head, name) }
	seen := map[int]int{}
	var gap time.Duration
	for i, r := range rows[1:] {
		if r[col("kind")] != "result" {
			continue
		}
		if r[col("error_code")] != "" {
			t.Errorf("frame %s failed: %s %s", r[col("frame_id")], r[col("error_code")], r[col("error_message")])
		}
		id, _ := strconv.Atoi(r[col("frame_id")])
		seen[id]++
		// rows[1:][i] is lines[i+1]: the header is line 0.
		if at := lines[i+1].at; at.After(killed) && i > 0 {
			gap = max(gap, at.Sub(lines[i].at))
		}
	}
	for id := 1; id <= frames; id++ {
		if seen[id] != 1 {
			t.Errorf("frame %d answered %d times, want once", id, seen[id])
		}
	}
	return gap
}

// newStream returns the replica on which one more ClassifyStream than before is
// open: the CLI's.
func (c *cluster) newStream(t *testing.T, before map[string]int) string {
	t.Helper()
	var now map[string]int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		now = c.counts(streamsOpenSeries)
		if d := delta(before, now); sum(d) == 1 {
			for ip, n := range d {
				if n == 1 {
					return ip
				}
			}
		}
	}
	t.Fatalf("ClassifyStreams open by replica %v, %v before the CLI's: want one more on one replica", now, before)
	return ""
}

// paced yields the image as frames, perSecond of them, until ctx is done.
func paced(ctx context.Context, img *pb.Image, perSecond int) iter.Seq[*pb.StreamFrame] {
	return func(yield func(*pb.StreamFrame) bool) {
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		for id := uint64(1); ; id++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if !yield(&pb.StreamFrame{FrameId: id, Image: img}) {
				return
			}
		}
	}
}
