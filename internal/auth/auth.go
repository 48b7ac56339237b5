// Package auth holds Atelier's bearer tokens and roles: the token file, its parser, the
// table of which role each RPC needs, and a store that re-reads the file when it
// changes. Tokens are compared in constant time and never kept in logs; a token's
// fingerprint (a hash prefix) names it instead.
package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
)

// Role is what a token may do. Roles are ordered: a higher role may do all a lower one may.
type Role int

const (
	// RoleNone is no token at all; only open methods (health) are allowed.
	RoleNone Role = iota
	// RoleInfer may run the models (Classify, Detect, Generate, streams, alerts) and read
	// the model list.
	RoleInfer
	// RoleAdmin may do everything, including the model lifecycle.
	RoleAdmin
)

// String names the role as the token file does.
func (r Role) String() string {
	switch r {
	case RoleInfer:
		return "infer"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// ParseRole reads a role name from the token file.
func ParseRole(s string) (Role, error) {
	switch s {
	case "infer":
		return RoleInfer, nil
	case "admin":
		return RoleAdmin, nil
	}
	if len(s) >= MinTokenBytes {
		// Perhaps the columns are swapped: never echo what may be a token.
		return RoleNone, fmt.Errorf("unknown role of %d characters (want infer or admin; lines are TOKEN ROLE [NAME])", len(s))
	}
	return RoleNone, fmt.Errorf("unknown role %q (want infer or admin)", s)
}

// Identity is who a token belongs to.
type Identity struct {
	// Name is the token's name from the file (its fingerprint when unnamed).
	Name string
	Role Role
	// Fingerprint is the first hex digits of the token's SHA-256: safe to log.
	Fingerprint string
}

// MaxTokens bounds the entries of a token file; MaxTokenBytes one token.
const (
	MaxTokens     = 10_000
	MaxTokenBytes = 512
	MinTokenBytes = 16
)

// Fingerprint returns the loggable name of a token: 12 hex digits of its SHA-256.
func Fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:6])
}

type entry struct {
	sum [sha256.Size]byte
	id  Identity
}

// Table is one parsed token file. It holds only the tokens' SHA-256 digests.
type Table struct {
	entries []entry
	bySum   map[[sha256.Size]byte]int
}

// Len returns the number of tokens.
func (t *Table) Len() int { return len(t.entries) }

// Parse reads a token file: one token a line, "TOKEN ROLE [NAME]", separated by
// spaces or tabs; blank lines and lines starting with # are skipped. Tokens are 16 to
// 512 printable ASCII characters and unique. Errors name the line, never the token.
func Parse(data []byte) (*Table, error) {
	t := &Table{bySum: map[[sha256.Size]byte]int{}}
	seen := map[[sha256.Size]byte]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Fields(text)
		if len(f) < 2 || len(f) > 3 {
			return nil, fmt.Errorf("line %d: want TOKEN ROLE [NAME], got %d fields", line, len(f))
		}
		tok := f[0]
		if len(tok) < MinTokenBytes || len(tok) > MaxTokenBytes {
			return nil, fmt.Errorf("line %d: a token must be %d to %d characters, this one has %d", line, MinTokenBytes, MaxTokenBytes, len(tok))
		}
		for _, c := range []byte(tok) {
			if c < 0x21 || c > 0x7e {
				return nil, fmt.Errorf("line %d: a token must be printable ASCII", line)
			}
		}
		role, err := ParseRole(f[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		sum := sha256.Sum256([]byte(tok))
		if prev, dup := seen[sum]; dup {
			return nil, fmt.Errorf("line %d: the same token as line %d", line, prev)
		}
		seen[sum] = line
		id := Identity{Role: role, Fingerprint: Fingerprint(tok)}
		id.Name = id.Fingerprint
		if len(f) == 3 {
			if len(f[2]) > 64 {
				return nil, fmt.Errorf("line %d: a name is at most 64 characters", line)
			}
			id.Name = f[2]
		}
		if len(t.entries) == MaxTokens {
			return nil, fmt.Errorf("line %d: more than %d tokens", line, MaxTokens)
		}
		t.bySum[sum] = len(t.entries)
		t.entries = append(t.entries, entry{sum: sum, id: id})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	return t, nil
}

// Lookup returns the identity of token. It never compares the token itself: it
// hashes it and finds the digest, so how long a lookup takes depends only on the
// digest of what the caller sent, which tells the caller nothing about any stored
// token (finding a token from its digest's first bytes is a preimage attack on
// SHA-256). The final check of the digest is constant-time. The cost is the same for
// one token or ten thousand (BenchmarkGuardAdmit).
func (t *Table) Lookup(token string) (Identity, bool) {
	if t == nil || token == "" || len(token) > MaxTokenBytes {
		return Identity{}, false
	}
	sum := sha256.Sum256([]byte(token))
	i, ok := t.bySum[sum]
	if !ok || subtle.ConstantTimeCompare(sum[:], t.entries[i].sum[:]) != 1 {
		return Identity{}, false
	}
	return t.entries[i].id, true
}
