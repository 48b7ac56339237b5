package servertest

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/credentials"

	"github.com/atelier-vision/atelier/internal/testcerts"
)

// Secured is a running atelierd with TLS, required client certificates (mTLS) and
// bearer tokens, and what a client needs to reach it.
type Secured struct {
	*Server
	CA     *testcerts.CA // signs the server's and the clients' certificates
	Client testcerts.Pair
	// ServerPair is the server's live certificate files (rewrite them to rotate).
	ServerPair testcerts.Pair
	// TokensFile maps InferToken to infer and AdminToken to admin.
	TokensFile             string
	InferToken, AdminToken string
	MetricsAddr            string
}

// StartSecured starts atelierd with TLS, mTLS and tokens (certificates made by
// testcerts); extra adds flags. It is stopped when the test ends.
func StartSecured(t testing.TB, extra ...string) *Secured {
	t.Helper()
	ca := testcerts.NewCA(t, "atelier-test")
	s := &Secured{CA: ca,
		ServerPair: ca.Issue(t, "server", testcerts.Options{}),
		Client:     ca.Issue(t, "client", testcerts.Options{Client: true}),
		InferToken: "infer-0123456789abcdef0123", AdminToken: "admin-0123456789abcdef0123",
	}
	s.TokensFile = filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(s.TokensFile, []byte(s.InferToken+" infer camera\n"+s.AdminToken+" admin ops\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if s.MetricsAddr, err = freeAddr(); err != nil {
		t.Fatal(err)
	}
	creds := credentials.NewTLS(testcerts.ClientConfig(t, ca, &s.Client))
	args := append([]string{"--tls-cert", s.ServerPair.CertFile, "--tls-key", s.ServerPair.KeyFile,
		"--tls-client-ca", ca.CertFile, "--auth-tokens-file", s.TokensFile, "--metrics-listen", s.MetricsAddr,
		"--reload-interval", "50ms", "--log-level", "debug"}, extra...)
	s.Server = StartSecure(t, creds, args...)
	return s
}
