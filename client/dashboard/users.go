package dashboard

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/atelier-vision/atelier/internal/admission"
)

// The users file's limits: entries, bytes a line, bytes a name, bytes a file, and the
// highest bcrypt cost (htpasswd -B -C takes 4 to 17; each step doubles a check's time).
const (
	maxUsers      = 10_000
	maxUserLine   = 1024
	maxUserName   = 255
	maxUsersFile  = 4 << 20
	maxBcryptCost = 17
)

// parseUsers reads an htpasswd file of bcrypt hashes, the lines `htpasswd -B` writes:
// NAME:$2y$COST$..., with blank lines and lines starting with # skipped. Any other
// kind of hash (MD5 $apr1$, SHA {SHA}, crypt, plain text), a duplicate or empty name
// or an over-long line is refused with its line number. Errors never show a hash.
func parseUsers(data []byte) (map[string][]byte, error) {
	out := map[string][]byte{}
	seen := map[string]int{}
	for i, raw := range bytes.Split(data, []byte("\n")) {
		line := i + 1
		if len(raw) > maxUserLine {
			return nil, fmt.Errorf("line %d: %d bytes, over the limit of %d", line, len(raw), maxUserLine)
		}
		text := strings.TrimSpace(string(raw))
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		name, hash, ok := strings.Cut(text, ":")
		switch {
		case !ok:
			return nil, fmt.Errorf("line %d: want NAME:HASH, as `htpasswd -B` writes", line)
		case name == "":
			return nil, fmt.Errorf("line %d: the user name is empty", line)
		case len(name) > maxUserName:
			return nil, fmt.Errorf("line %d: a user name of %d bytes is over the limit of %d", line, len(name), maxUserName)
		case !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			return nil, fmt.Errorf("line %d: the user name is not printable UTF-8", line)
		}
		if kind := hashKind(hash); kind != "bcrypt" {
			return nil, fmt.Errorf("line %d: user %q has %s; only bcrypt hashes are accepted: make the file with `htpasswd -B`", line, name, kind)
		}
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return nil, fmt.Errorf("line %d: user %q: a broken bcrypt hash (%v)", line, name, err)
		}
		if cost > maxBcryptCost {
			return nil, fmt.Errorf("line %d: user %q: bcrypt cost %d is over %d (every check would take seconds)", line, name, cost, maxBcryptCost)
		}
		if prev, dup := seen[name]; dup {
			return nil, fmt.Errorf("line %d: user %q is also on line %d", line, name, prev)
		}
		if len(out) == maxUsers {
			return nil, fmt.Errorf("line %d: more than %d users", line, maxUsers)
		}
		seen[name] = line
		out[name] = []byte(hash)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no users (add one with `htpasswd -B FILE NAME`)")
	}
	return out, nil
}

// hashKind names the kind of an htpasswd hash, "bcrypt" for the one accepted.
func hashKind(hash string) string {
	for _, k := range []struct{ prefix, kind string }{
		{"$2a$", "bcrypt"}, {"$2b$", "bcrypt"}, {"$2y$", "bcrypt"},
		{"$apr1$", "an MD5 hash ($apr1$, htpasswd -m)"},
		{"{SHA}", "a SHA-1 hash ({SHA}, htpasswd -s)"},
		{"$1$", "an MD5-crypt hash ($1$)"},
		{"$5$", "a SHA-256-crypt hash ($5$)"},
		{"$6$", "a SHA-512-crypt hash ($6$)"},
	} {
		if strings.HasPrefix(hash, k.prefix) {
			return k.kind
		}
	}
	if len(hash) == 13 && !strings.ContainsFunc(hash, func(r rune) bool {
		return !(r == '.' || r == '/' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z')
	}) {
		return "a DES crypt hash (htpasswd -d)"
	}
	return "a plain-text password or an unknown hash (htpasswd -p)"
}

// users is the users file made live: its current table, re-read when the file changes.
// A new table replaces the old one whole, and with it the cache of successful checks;
// a file that fails to parse leaves the old table in force.
type users struct {
	path  string
	log   *slog.Logger
	table atomic.Pointer[userTable]
	// slots bounds the bcrypt comparisons running at once, so that a flood of wrong
	// logins costs a few cores at most.
	slots    chan struct{}
	failures failureLog
	// limit bounds the logins that need a bcrypt comparison from one client address
	// (admission.CallerKey of its host): each takes a token before its comparison, and
	// one that succeeds gives it back. nil: no limit (limitLogins sets it).
	limit     *admission.Controller
	perMinute int
	limited   failureLog                        // the limit's refusals, by address
	clock     func() time.Time                  // the limit's clock
	compare   func(hash, password []byte) error // bcrypt.CompareHashAndPassword
}

// openUsers reads the users file at path; it fails if the file is missing or broken.
func openUsers(path string, slots int, log *slog.Logger) (*users, error) {
	u := &users{path: path, log: log, slots: make(chan struct{}, max(1, slots)),
		clock: time.Now, compare: bcrypt.CompareHashAndPassword}
	if err := u.load(); err != nil {
		return nil, err
	}
	return u, nil
}

// limitLogins limits each client address to perMinute logins a minute that need a
// bcrypt comparison, with a burst of as many; successful ones are given back, so in
// effect it limits the failed ones. 0 leaves the logins unlimited.
func (u *users) limitLogins(perMinute int) {
	if perMinute > 0 {
		u.limit = admission.New(admission.Config{Rate: float64(perMinute) / 60, Burst: perMinute})
		u.perMinute = perMinute
	}
}

func (u *users) load() error {
	f, err := os.Open(u.path)
	if err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxUsersFile+1))
	if err != nil {
		return fmt.Errorf("users file %s: %w", u.path, err)
	}
	if len(data) > maxUsersFile {
		return fmt.Errorf("users file %s: over %d MiB", u.path, maxUsersFile>>20)
	}
	hashes, err := parseUsers(data)
	if err != nil {
		return fmt.Errorf("users file %s: %w", u.path, err)
	}
	u.table.Store(newUserTable(hashes))
	return nil
}

// Reload re-reads the file. On error the previous users stay and the error is logged
// (and returned).
func (u *users) Reload() error {
	if err := u.load(); err != nil {
		u.log.Error("users file refused; the previous users stay", "err", err)
		return err
	}
	u.log.Info("users file loaded", "path", u.path, "users", len(u.table.Load().hashes))
	return nil
}
