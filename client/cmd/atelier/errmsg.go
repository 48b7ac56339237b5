package main

import (
	"strconv"
	"strings"

	"google.golang.org/grpc/status"
)

// statusMessage is a status's message fit for one line. A call that could not reach
// the server carries grpc-go's wrappers ("max retries exhausted: failed after 5
// attempts: rpc error: code = Unavailable desc = connection error: desc =
// \"transport: ...\""); the line keeps what went wrong, and a hint when it looks like
// a TLS mismatch or a server that is not running.
func statusMessage(st *status.Status) string {
	msg := st.Message()
	if i := strings.LastIndex(msg, "rpc error: code = "); i >= 0 {
		if j := strings.Index(msg[i:], " desc = "); j >= 0 {
			msg = msg[i+j+len(" desc = "):]
		}
	}
	rest, ok := strings.CutPrefix(msg, "connection error: desc = ")
	if !ok {
		return msg
	}
	if unq, err := strconv.Unquote(rest); err == nil {
		rest = unq
	}
	msg = "cannot connect: " + strings.TrimPrefix(strings.TrimPrefix(rest, "transport: "), "Error while dialing: ")
	for _, h := range connHints {
		if strings.Contains(msg, h.sign) {
			return msg + " (" + h.hint + ")"
		}
	}
	return msg
}

// connHints name the likely cause of a failed connection from grpc-go's words.
var connHints = []struct{ sign, hint string }{
	{"error reading server preface", "is the server serving TLS? then connect with --tls-ca FILE or --tls"},
	{"first record does not look like a TLS handshake", "the server speaks plaintext: connect without --tls, --tls-ca and --tls-cert"},
	{"certificate signed by unknown authority", "trust the CA that signed the server's certificate with --tls-ca FILE"},
	{"connection refused", "is atelierd running at this address?"},
}
