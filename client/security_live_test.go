//go:build cgo

package client_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/client"
	"github.com/atelier-vision/atelier/internal/servertest"
	"github.com/atelier-vision/atelier/internal/testcerts"
)

func secureClient(t *testing.T, s *servertest.Secured, cert *testcerts.Pair, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(s.Addr, append([]client.Option{client.WithTLS(testcerts.ClientConfig(t, s.CA, cert)), client.WithRetries(1), client.WithTimeout(20 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestLiveSecurity runs the client against a real server with TLS, mTLS and tokens.
func TestLiveSecurity(t *testing.T) {
	s := servertest.StartSecured(t)
	ctx := context.Background()
	boot, err := client.ImageFile(sampleBoot(t))
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		c    *client.Client
		want codes.Code
	}{
		{"mtls and an infer token", secureClient(t, s, &s.Client, client.WithToken(s.InferToken)), codes.OK},
		{"mtls and no token", secureClient(t, s, &s.Client), codes.Unauthenticated},
		{"mtls and a wrong token", secureClient(t, s, &s.Client, client.WithToken("wrong-0123456789abcdef")), codes.Unauthenticated},
		{"no client certificate", secureClient(t, s, nil, client.WithToken(s.InferToken)), codes.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.ClassifyImages(ctx, 1, boot)
			if status.Code(err) != tc.want {
				t.Fatalf("Classify: got %v, want %v", err, tc.want)
			}
		})
	}

	plain, err := client.New(s.Addr, client.WithRetries(1), client.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.ListModels(ctx); status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext client against the TLS server: got %v, want Unavailable", err)
	}

	// The metrics port has the same TLS: a client certificate is required there too.
	tr := &http.Transport{TLSClientConfig: testcerts.ClientConfig(t, s.CA, &s.Client)}
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + s.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics over mTLS: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "atelier_") {
		t.Fatalf("metrics: %d %.200s", resp.StatusCode, body)
	}
	// Go's TLS server answers plaintext HTTP with a 400, never the metrics.
	if resp, err := http.Get("http://" + s.MetricsAddr + "/metrics"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || strings.Contains(string(body), "atelier_") {
			t.Fatalf("plaintext HTTP to the metrics port: %d %.200s", resp.StatusCode, body)
		}
	}
	noCert := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CA.Pool()}}
	if _, err := (&http.Client{Transport: noCert, Timeout: 10 * time.Second}).Get("https://" + s.MetricsAddr + "/metrics"); err == nil {
		t.Fatal("metrics without a client certificate worked")
	}
	if strings.Contains(s.Log(), s.InferToken) {
		t.Fatal("the server log holds a token")
	}
}

// TestLiveRotationUnderLoad rotates the server certificate and the tokens while
// clients call: no call fails, and the removed token stops working.
func TestLiveRotationUnderLoad(t *testing.T) {
	s := servertest.StartSecured(t)
	ctx := context.Background()
	const next = "rotated-0123456789abcdef0123"
	var current atomic.Value
	current.Store(s.InferToken)
	var calls, failed atomic.Int64
	var clients [4]atomic.Int64 // each caller's clients so far; the token switch waits on them
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stopping sync.Once
	stopCallers := func() { stopping.Do(func() { close(stop) }); wg.Wait() }
	// A failed step below must not leave the callers running (and logging) past the test.
	defer stopCallers()
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				clients[i].Add(1) // before the token is read: see the switch below
				// Half the callers dial anew each time, so handshakes meet the new certificate.
				c, err := client.New(s.Addr, client.WithTLS(testcerts.ClientConfig(t, s.CA, &s.Client)),
					client.WithToken(current.Load().(string)), client.WithRetries(1), client.WithTimeout(20*time.Second))
				if err != nil {
					failed.Add(1)
					return
				}
				for range 1 + 10*(i%2) {
					_, err = c.ListModels(ctx)
					calls.Add(1)
					if err != nil {
						failed.Add(1)
						t.Logf("call failed during rotation: %v", err)
					}
				}
				c.Close()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	second := s.CA.Issue(t, "server-2", testcerts.Options{})
	testcerts.Replace(t, second.CertFile, s.ServerPair.CertFile)
	testcerts.Replace(t, second.KeyFile, s.ServerPair.KeyFile)
	// Rotate the token: add the new one, switch the callers, then remove the old. Each
	// step waits for what the next one needs (the server's reload of the file, every
	// caller on the new token) instead of sleeping for it: on a loaded machine a sleep
	// can end first, and a caller then sends a token the server does not hold yet, or
	// no longer.
	waitUntil := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("still waiting after 10 s for %s", what)
			}
		}
	}
	tokenLoads := func() int { return strings.Count(s.Log(), "token file loaded") }
	loads := tokenLoads()
	writeTokens(t, s.TokensFile, s.InferToken+" infer old\n"+next+" infer new\n")
	waitUntil("the server to load the file with both tokens", func() bool { return tokenLoads() > loads })
	current.Store(next)
	// A caller that has begun a client since holds the new token and is done with the old.
	var began [len(clients)]int64
	for i := range clients {
		began[i] = clients[i].Load()
	}
	waitUntil("every caller to start a client on the new token", func() bool {
		for i := range clients {
			if clients[i].Load() <= began[i] {
				return false
			}
		}
		return true
	})
	loads = tokenLoads()
	writeTokens(t, s.TokensFile, next+" infer new\n")
	waitUntil("the server to load the file without the old token", func() bool { return tokenLoads() > loads })
	time.Sleep(300 * time.Millisecond) // calls on the new token alone
	stopCallers()
	if failed.Load() > 0 || calls.Load() < 10 {
		t.Fatalf("%d of %d calls failed across the rotation", failed.Load(), calls.Load())
	}
	if !strings.Contains(s.Log(), "tls files loaded") || !strings.Contains(s.Log(), "token file loaded") {
		t.Fatalf("the server did not log the reloads:\n%s", s.Log())
	}
	old := secureClient(t, s, &s.Client, client.WithToken(s.InferToken))
	if _, err := old.ListModels(ctx); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("removed token: got %v, want Unauthenticated", err)
	}
	t.Logf("%d calls across certificate and token rotation, none failed", calls.Load())
}

func writeTokens(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
