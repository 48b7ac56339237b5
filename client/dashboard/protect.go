package dashboard

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/atelier-vision/atelier/internal/certs"
	"github.com/atelier-vision/atelier/internal/filewatch"
)

// protect opens what guards the page, as atelierd guards its ports: the TLS files
// (internal/certs) and the users file, each re-read when it changes (internal/filewatch,
// started by Run). A missing or broken file fails here; later, a broken new one is
// refused with a log line and the old one stays in force.
func (d *Dashboard) protect() error {
	if d.cfg.TLSCert != "" {
		r, err := certs.New(certs.Files{Cert: d.cfg.TLSCert, Key: d.cfg.TLSKey}, d.log)
		if err != nil {
			return fmt.Errorf("--listen-tls-cert/--listen-tls-key: %w", err)
		}
		d.certs = r
		d.watchers = append(d.watchers, filewatch.New(filewatch.DefaultInterval, func() { r.Reload() }, r.Files().Paths()...))
	}
	if d.cfg.UsersFile != "" {
		u, err := openUsers(d.cfg.UsersFile, max(2, runtime.GOMAXPROCS(0)/2), d.log)
		if err != nil {
			return fmt.Errorf("--users-file: %w", err)
		}
		d.users = u
		d.watchers = append(d.watchers, filewatch.New(filewatch.DefaultInterval, func() { u.Reload() }, d.cfg.UsersFile))
	}
	return nil
}

// watchFiles re-reads the TLS and users files when they change, until ctx is done.
func (d *Dashboard) watchFiles(ctx context.Context) {
	var wg sync.WaitGroup
	for _, w := range d.watchers {
		wg.Go(func() { w.Run(ctx) })
	}
	wg.Wait()
}

// stillAllowed reports whether the request's login is still in the users file with
// the same password (true without a users file): an open event stream checks it
// before each event, so a user removed from the file is cut off.
func (d *Dashboard) stillAllowed(l login, ok bool) bool {
	return d.users == nil || (ok && d.users.valid(l))
}
