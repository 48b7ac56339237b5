package connlimit

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/testenv"
)

// serve accepts on a limited loopback listener and keeps every accepted connection
// until the test closes it through the returned channel of server-side ends.
func serve(t *testing.T, cfg Config) (*Listener, <-chan net.Conn, *testenv.Buffer) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Buffer{}
	l := New(inner, cfg, slog.New(slog.NewTextHandler(logs, nil)))
	t.Cleanup(func() { l.Close() })
	accepted := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	return l, accepted, logs
}

// dial connects from the local address from (an address of 127.0.0.0/8).
func dial(t *testing.T, l net.Listener, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer reports whether the server closed c at once: a read sees the end of
// the connection instead of waiting (2 s for a refusal; a connection kept open is
// checked for 100 ms, in which a refusal's close would have arrived).
func closedByServer(c net.Conn) bool { return closedWithin(c, 2*time.Second) }

func keptOpen(c net.Conn) bool { return !closedWithin(c, 100*time.Millisecond) }

func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	return err == io.EOF || err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func accept(t *testing.T, accepted <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-accepted:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
		return nil
	}
}

func TestPerCallerLimit(t *testing.T) {
	l, accepted, logs := serve(t, Config{PerCaller: 2})
	a1, a2 := dial(t, l, "127.0.0.1"), dial(t, l, "127.0.0.1")
	s1, _ := accept(t, accepted), accept(t, accepted)
	if a3 := dial(t, l, "127.0.0.1"); !closedByServer(a3) {
		t.Fatal("a third connection from one caller was kept open")
	}
	// Another caller is not held to the first one's count.
	b1 := dial(t, l, "127.0.0.2")
	accept(t, accepted)
	if total, busiest := l.Open(); total != 3 || busiest != 2 {
		t.Fatalf("open %d, busiest caller %d; want 3 and 2", total, busiest)
	}
	// A connection that ends gives its place back, once however often it is closed.
	s1.Close()
	s1.Close()
	if a4 := dial(t, l, "127.0.0.1"); !keptOpen(a4) {
		t.Fatal("a connection after one closed was refused")
	}
	accept(t, accepted)
	var m strings.Builder
	l.WriteMetrics(&m)
	for _, want := range []string{"atelier_connections_open 3\n", "atelier_connections_open_busiest_caller 2\n",
		`atelier_connections_refused_total{limit="caller"} 1` + "\n", `atelier_connections_refused_total{limit="max"} 0` + "\n"} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, m.String())
		}
	}
	if !strings.Contains(logs.String(), `msg="connection refused" remote=127.0.0.1:`) || !strings.Contains(logs.String(), `limit="--max-connections-per-caller 2"`) {
		t.Errorf("no refusal line naming the limit:\n%s", logs.String())
	}
	_, _, _ = a1, a2, b1
}

func TestMaxLimitAndLogRate(t *testing.T) {
	l, accepted, logs := serve(t, Config{Max: 1})
	dial(t, l, "127.0.0.1")
	accept(t, accepted)
	for range 20 {
		if c := dial(t, l, "127.0.0.3"); !closedByServer(c) {
			t.Fatal("a connection over --max-connections was kept open")
		}
	}
	var m strings.Builder
	l.WriteMetrics(&m)
	if want := `atelier_connections_refused_total{limit="max"} 20`; !strings.Contains(m.String(), want) {
		t.Errorf("metrics lack %q:\n%s", want, m.String())
	}
	// 20 refusals in well under a second: a few lines, not 20.
	if n := strings.Count(logs.String(), "connection refused"); n < 1 || n > refusedLinesPerSecond*2 {
		t.Errorf("%d refusal lines for 20 refusals, want 1..%d", n, refusedLinesPerSecond*2)
	}
}

func TestNoLimits(t *testing.T) {
	l, accepted, _ := serve(t, Config{})
	for range 50 {
		dial(t, l, "127.0.0.1")
		accept(t, accepted)
	}
	if total, _ := l.Open(); total != 50 {
		t.Fatalf("open %d, want 50", total)
	}
}

func TestCallerKeyOfAnIPv6Host(t *testing.T) {
	a := &net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa::1"), Port: 5}
	b := &net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:bbbb::9"), Port: 6}
	v4 := &net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.7"), Port: 7}
	if callerKey(a) != callerKey(b) || callerKey(v4) != "10.0.0.7" {
		t.Fatalf("keys %q %q %q: want one /64 for the first two and 10.0.0.7", callerKey(a), callerKey(b), callerKey(v4))
	}
}

func TestValidate(t *testing.T) {
	if err := (Config{Max: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "--max-connections") {
		t.Fatalf("got %v, want an error naming the flags", err)
	}
	if err := (Config{Max: 10, PerCaller: 2}).Validate(); err != nil {
		t.Fatal(err)
	}
}
