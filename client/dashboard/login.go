package dashboard

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/atelier-vision/atelier/internal/admission"
)

// loginCacheTTL is how long a successful bcrypt check is remembered: a page fetches a
// frame JPEG several times a second, and each bcrypt check costs milliseconds to
// (at the default cost of Go's bcrypt) some 50-100 ms of a core.
const loginCacheTTL = time.Minute

// maxCachedLogins bounds the cache; only successful logins enter it.
const maxCachedLogins = 1024

// realm is the Basic authentication challenge every refused request gets.
const realm = `Basic realm="atelier dashboard", charset="UTF-8"`

// userTable is one users file: each name's bcrypt hash, and the successful checks
// made against it. It holds no password, only SHA-256 digests of salted credentials.
type userTable struct {
	hashes map[string][]byte
	// dummy is what an unknown name's password is compared with (the costliest hash
	// of the file), so that a wrong name takes as long as a wrong password.
	dummy []byte
	salt  [32]byte

	mu sync.Mutex
	ok map[[sha256.Size]byte]time.Time // cache key -> when it expires
}

func newUserTable(hashes map[string][]byte) *userTable {
	t := &userTable{hashes: hashes, ok: map[[sha256.Size]byte]time.Time{}}
	rand.Read(t.salt[:])
	best := -1
	for _, h := range hashes {
		if c, _ := bcrypt.Cost(h); c > best {
			best, t.dummy = c, h
		}
	}
	return t
}

// has reports whether name is in the table with hash.
func (t *userTable) has(name string, hash []byte) bool {
	h, ok := t.hashes[name]
	return ok && bytes.Equal(h, hash)
}

// key is the cache key of a login: SHA-256 of the salt, the presented name and
// password, and the name's hash in the file.
func (t *userTable) key(name, password string, hash []byte) [sha256.Size]byte {
	s := sha256.New()
	s.Write(t.salt[:])
	for _, part := range [][]byte{[]byte(name), []byte(password), hash} {
		s.Write(binary.BigEndian.AppendUint32(nil, uint32(len(part))))
		s.Write(part)
	}
	var k [sha256.Size]byte
	s.Sum(k[:0])
	return k
}

func (t *userTable) cached(k [sha256.Size]byte, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	exp, ok := t.ok[k]
	return ok && now.Before(exp)
}

func (t *userTable) remember(k [sha256.Size]byte, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.ok) >= maxCachedLogins {
		for k, exp := range t.ok {
			if !now.Before(exp) {
				delete(t.ok, k)
			}
		}
		if len(t.ok) >= maxCachedLogins {
			clear(t.ok)
		}
	}
	t.ok[k] = now.Add(loginCacheTTL)
}

// login is who a request logged in as: the name and the hash it matched.
type login struct {
	name string
	hash []byte
}

type loginKey struct{}

// check compares a presented login with the current table: from the cache when it
// succeeded lately, else with bcrypt (waiting for a slot, or until ctx is done). An
// unknown name costs one bcrypt comparison too. why says what failed, for the log.
func (u *users) check(ctx context.Context, name, password string) (l login, ok bool, why string) {
	l, ok, why, _ = u.checkFrom(ctx, "", name, password)
	return l, ok, why
}

// whyLimited is checkFrom's why when the client address is out of login attempts.
const whyLimited = "too many failed logins from this address"

// checkFrom is check for a login from the client address key (callerKey). A login
// the cache does not hold first takes one of key's attempts (limitLogins): with none
// left it fails at once, why whyLimited and wait the time until the next one, without
// a slot or a bcrypt comparison. A login that succeeds gives its attempt back.
func (u *users) checkFrom(ctx context.Context, key, name, password string) (l login, ok bool, why string, wait time.Duration) {
	t := u.table.Load()
	hash, known := t.hashes[name]
	k := t.key(name, password, hash)
	if known && t.cached(k, time.Now()) {
		return login{name, hash}, true, "", 0
	}
	if allowed, wait := u.limit.AllowAt(key, u.clock()); !allowed {
		return login{}, false, whyLimited, wait
	}
	select {
	case u.slots <- struct{}{}:
	case <-ctx.Done():
		return login{}, false, "gave up waiting", 0
	}
	defer func() { <-u.slots }()
	if !known {
		u.compare(t.dummy, []byte(password))
		return login{}, false, "unknown user", 0
	}
	if u.compare(hash, []byte(password)) != nil {
		return login{}, false, "wrong password", 0
	}
	u.limit.Refund(key)
	t.remember(k, time.Now())
	return login{name, hash}, true, "", 0
}

// callerKey names the client a request comes from, for the login limit: its IPv4
// address or its IPv6 /64, as atelierd's admission control does. Behind a reverse
// proxy every client has the proxy's address.
func callerKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	return admission.CallerKey(host)
}

// valid reports whether l is still a user of the current table with the same hash:
// a user removed or given a new password since is not.
func (u *users) valid(l login) bool { return u.table.Load().has(l.name, l.hash) }

// require lets through only requests with a valid HTTP Basic login; the others get
// 401 and the challenge. The login rides in the request's context (loginOf).
func (u *users) require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, password, presented := r.BasicAuth()
		if presented {
			key := callerKey(r.RemoteAddr)
			l, ok, why, wait := u.checkFrom(r.Context(), key, name, password)
			if ok {
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), loginKey{}, l)))
				return
			}
			if why == whyLimited {
				u.refuseLimited(w, key, name, wait)
				return
			}
			if r.Context().Err() != nil {
				return // the browser left while the check waited for a slot
			}
			u.failures.note(u.log, time.Now(), name, why, r.RemoteAddr)
		}
		w.Header().Set("WWW-Authenticate", realm)
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "log in to see the store's cameras", http.StatusUnauthorized)
	})
}

// refuseLimited answers a login refused by the limit on failed logins: 429 with
// Retry-After, in whole seconds rounded up. Refusals are logged at most once a minute
// per address and failureLines lines a minute in all.
func (u *users) refuseLimited(w http.ResponseWriter, key, name string, wait time.Duration) {
	secs := max(1, int64(math.Ceil(wait.Seconds())))
	if held, ok := u.limited.pass(u.clock(), key); ok {
		u.log.Warn("dashboard logins limited", "remote", key, "user", clipName(name), "why", whyLimited,
			"per_minute", u.perMinute, "retry_after_s", secs, "held_back", held)
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, fmt.Sprintf("too many failed logins from your address (the limit is %d a minute): try again in %d s",
		u.perMinute, secs), http.StatusTooManyRequests)
}

// loginOf returns the login a request came in with (none without a users file).
func loginOf(r *http.Request) (login, bool) {
	l, ok := r.Context().Value(loginKey{}).(login)
	return l, ok
}

// failureLog logs refused logins: each name at most once a minute, and at most
// failureLines lines a minute in all (a stream of made-up names must not flood the
// log); the refusals held back are counted on the next line.
type failureLog struct {
	mu    sync.Mutex
	last  map[string]time.Time
	start time.Time // of the current minute
	lines int
	held  int
}

const failureLines = 10

func (f *failureLog) note(log *slog.Logger, now time.Time, name, why, remote string) {
	held, ok := f.pass(now, name)
	if !ok {
		return
	}
	log.Warn("dashboard login refused", "user", clipName(name), "why", why, "remote", remote, "held_back", held)
}

// pass reports whether a refusal keyed by key may be logged at now, and how many
// were held back since the last line; a refusal that may not is counted.
func (f *failureLog) pass(now time.Time, key string) (held int, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now.Sub(f.start) >= time.Minute {
		f.start, f.lines = now, 0
		for n, at := range f.last {
			if now.Sub(at) >= time.Minute {
				delete(f.last, n)
			}
		}
	}
	if at, ok := f.last[key]; (ok && now.Sub(at) < time.Minute) || f.lines >= failureLines {
		f.held++
		return 0, false
	}
	if f.last == nil {
		f.last = map[string]time.Time{}
	}
	f.last[key] = now
	f.lines++
	held, f.held = f.held, 0
	return held, true
}

// clipName cuts a presented user name to 64 bytes for the log.
func clipName(name string) string {
	if len(name) > 64 {
		return strings.ToValidUTF8(name[:64], "") + "..."
	}
	return name
}
