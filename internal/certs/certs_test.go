package certs

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/atelier-vision/atelier/internal/testcerts"
	"github.com/atelier-vision/atelier/internal/testenv"
)

// serveTLS serves grpc.health.v1 with the reloader's TLS on a loopback port.
func serveTLS(t *testing.T, r *Reloader) string {
	t.Helper()
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(r.Config("h2"))))
	healthpb.RegisterHealthServer(s, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// check makes one health call on a new connection and returns the server
// certificate's serial number it saw.
func check(addr string, creds credentials.TransportCredentials) (string, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var p peer.Peer
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
		return "", err
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return "", nil
	}
	return info.State.PeerCertificates[0].SerialNumber.String(), nil
}

func newReloader(t *testing.T, f Files) *Reloader {
	t.Helper()
	r, err := New(f, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestTLSMatrix(t *testing.T) {
	ca := testcerts.NewCA(t, "clients")
	srvCA := testcerts.NewCA(t, "servers")
	other := testcerts.NewCA(t, "other")
	srv := srvCA.Issue(t, "server", testcerts.Options{})
	good := ca.Issue(t, "good-client", testcerts.Options{Client: true})
	expired := ca.Issue(t, "expired-client", testcerts.Options{Client: true, Expired: true})
	stranger := other.Issue(t, "stranger", testcerts.Options{Client: true})

	tlsAddr := serveTLS(t, newReloader(t, Files{Cert: srv.CertFile, Key: srv.KeyFile}))
	mtlsAddr := serveTLS(t, newReloader(t, Files{Cert: srv.CertFile, Key: srv.KeyFile, ClientCA: ca.CertFile}))
	expiredSrv := srvCA.Issue(t, "expired-server", testcerts.Options{Expired: true})
	expiredAddr := serveTLS(t, newReloader(t, Files{Cert: expiredSrv.CertFile, Key: expiredSrv.KeyFile}))

	tlsTo := func(client *testcerts.Pair) credentials.TransportCredentials {
		return credentials.NewTLS(testcerts.ClientConfig(t, srvCA, client))
	}
	// A client that offers only TLS 1.1 must be refused by the server's minimum, not
	// by its own: the test client's MinVersion of 1.2 would refuse to offer it, and
	// Go's server refuses it by default too unless GODEBUG says otherwise.
	t.Setenv("GODEBUG", "tls10server=1")
	old := testcerts.ClientConfig(t, srvCA, nil)
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	for _, tc := range []struct {
		name  string
		addr  string
		creds credentials.TransportCredentials
		want  string // "" for success, else a piece of the error
	}{
		{"tls", tlsAddr, tlsTo(nil), ""},
		{"plaintext client against tls", tlsAddr, insecure.NewCredentials(), "connection"},
		{"tls 1.1 client", tlsAddr, credentials.NewTLS(old), "protocol version not supported"},
		{"mtls with a good client certificate", mtlsAddr, tlsTo(&good), ""},
		// Under TLS 1.3 the server's refusal of a client certificate reaches the client
		// after its handshake, so it may see only the broken connection.
		{"mtls without a client certificate", mtlsAddr, tlsTo(nil), "unavailable"},
		{"mtls with a certificate from the wrong ca", mtlsAddr, tlsTo(&stranger), "unavailable"},
		{"mtls with an expired client certificate", mtlsAddr, tlsTo(&expired), "unavailable"},
		{"expired server certificate", expiredAddr, tlsTo(nil), "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := check(tc.addr, tc.creds)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want success", err)
			case tc.want != "" && err == nil:
				t.Fatalf("got success, want an error mentioning %q", tc.want)
			case tc.want != "" && !strings.Contains(strings.ToLower(err.Error()), tc.want):
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

// TestRotationUnderLoad replaces the certificate while clients call over old and new
// connections: no call fails, new handshakes get the new certificate, a held
// connection keeps going, and a broken file is refused with the old one serving.
func TestRotationUnderLoad(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	first := ca.Issue(t, "first", testcerts.Options{})
	second := ca.Issue(t, "second", testcerts.Options{})
	live := Files{Cert: first.CertFile + ".live", Key: first.KeyFile + ".live"}
	testcerts.Replace(t, first.CertFile, live.Cert)
	testcerts.Replace(t, first.KeyFile, live.Key)
	r := newReloader(t, live)
	addr := serveTLS(t, r)
	creds := credentials.NewTLS(testcerts.ClientConfig(t, ca, nil))

	held, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	h := healthpb.NewHealthClient(held)

	var calls, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err1 := check(addr, creds) // a new handshake
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err2 := h.Check(ctx, &healthpb.HealthCheckRequest{}) // the held connection
				cancel()
				calls.Add(2)
				if err1 != nil || err2 != nil {
					failed.Add(1)
					t.Logf("call failed during rotation: %v / %v", err1, err2)
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	testcerts.Replace(t, second.CertFile, live.Cert)
	testcerts.Replace(t, second.KeyFile, live.Key)
	if err := r.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() > 0 || calls.Load() < 8 {
		t.Fatalf("%d of %d calls failed across the rotation", failed.Load(), calls.Load())
	}
	got, err := check(addr, creds)
	if err != nil || got != second.Serial.String() {
		t.Fatalf("new handshake after rotation: serial %s, %v; want the second certificate %s", got, err, second.Serial)
	}

	if err := os.WriteFile(live.Cert, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil {
		t.Fatal("a broken certificate file was accepted")
	}
	got, err = check(addr, creds)
	if err != nil || got != second.Serial.String() {
		t.Fatalf("after a broken file: serial %s, %v; want the second certificate still", got, err)
	}
}

// TestClientCARotation replaces the client CA file: after Reload, new handshakes from
// a client of the old CA are refused and a client of the new CA is accepted, while a
// connection the old CA's client opened before goes on. A broken CA file is then
// refused with an ERROR log line naming it, and the new CA stays in force.
func TestClientCARotation(t *testing.T) {
	srvCA := testcerts.NewCA(t, "servers")
	srv := srvCA.Issue(t, "server", testcerts.Options{})
	oldCA, newCA := testcerts.NewCA(t, "old-clients"), testcerts.NewCA(t, "new-clients")
	oldClient := oldCA.Issue(t, "old-client", testcerts.Options{Client: true})
	newClient := newCA.Issue(t, "new-client", testcerts.Options{Client: true})
	live := Files{Cert: srv.CertFile, Key: srv.KeyFile, ClientCA: oldCA.CertFile + ".live"}
	testcerts.Replace(t, oldCA.CertFile, live.ClientCA)
	logs := &testenv.Buffer{}
	r, err := New(live, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, r)
	oldCreds := credentials.NewTLS(testcerts.ClientConfig(t, srvCA, &oldClient))
	newCreds := credentials.NewTLS(testcerts.ClientConfig(t, srvCA, &newClient))

	if _, err := check(addr, oldCreds); err != nil {
		t.Fatalf("the old CA's client before rotation: %v", err)
	}
	if _, err := check(addr, newCreds); err == nil {
		t.Fatal("the new CA's client was accepted before rotation")
	}
	held, err := grpc.NewClient(addr, grpc.WithTransportCredentials(oldCreds))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	heldCall := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := healthpb.NewHealthClient(held).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	if err := heldCall(); err != nil { // the connection is open now
		t.Fatalf("held connection before rotation: %v", err)
	}

	testcerts.Replace(t, newCA.CertFile, live.ClientCA)
	if err := r.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if _, err := check(addr, oldCreds); err == nil {
		t.Fatal("a new handshake from the old CA's client was accepted after rotation")
	}
	if _, err := check(addr, newCreds); err != nil {
		t.Fatalf("the new CA's client after rotation: %v", err)
	}
	for i := range 3 {
		if err := heldCall(); err != nil {
			t.Fatalf("held connection, call %d after rotation: %v", i, err)
		}
	}
	if s := held.GetState().String(); s != "READY" {
		t.Fatalf("held connection is %s after rotation, want READY", s)
	}

	if err := os.WriteFile(live.ClientCA, []byte("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil {
		t.Fatal("a broken client CA file was accepted")
	}
	out := logs.String()
	var errLine string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "level=ERROR") && strings.Contains(l, live.ClientCA) {
			errLine = l
		}
	}
	if errLine == "" {
		t.Fatalf("no ERROR log line names %s:\n%s", live.ClientCA, out)
	}
	if _, err := check(addr, newCreds); err != nil {
		t.Fatalf("the new CA's client after a broken CA file: %v", err)
	}
	if _, err := check(addr, oldCreds); err == nil {
		t.Fatal("the old CA's client was accepted after a broken CA file")
	}
	if err := heldCall(); err != nil {
		t.Fatalf("held connection after a broken CA file: %v", err)
	}
}
