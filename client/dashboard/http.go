package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/atelier-vision/atelier/internal/lograte"
)

// httpErrorLines bounds the page server's own error lines a second: anyone who reaches
// the port can cause one per connection (a failed TLS handshake, a malformed request).
const httpErrorLines = 5

//go:embed web
var web embed.FS

// The page's HTTP limits. There is no server-wide WriteTimeout, which would cut the
// event stream; each write has its own deadline instead, so a browser that vanished
// without closing its connection (a phone off the Wi-Fi) or that stops reading gives
// up its goroutine and buffers after writeTimeout, not after the kernel's minutes of
// retransmission. Variables so that tests can shorten them.
var (
	writeTimeout = 10 * time.Second
	idleTimeout  = 60 * time.Second
)

// retryAfter is what a page refused for --max-pages is told to wait, in seconds.
const retryAfter = 5

// HTTPServer returns a server for the page: Handler, the limits above, a 10 s limit on
// a request's headers and 64 KiB of them (the page sends no bodies), and its own
// errors (refused TLS handshakes) in the dashboard's log, at most 5 lines a second. Requests' contexts derive
// from base, so ending base ends the event streams and lets Shutdown finish. With
// TLS files, TLSConfig hands every new handshake the current certificate (TLS 1.2 or
// later, HTTP/2 or HTTP/1.1); serve it with Serve.
func (d *Dashboard) HTTPServer(base context.Context) *http.Server {
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idleTimeout,
		MaxHeaderBytes: 64 << 10, BaseContext: func(net.Listener) context.Context { return base },
		ErrorLog: lograte.HTTPErrorLog(d.log, "dashboard http", httpErrorLines)}
	if d.certs != nil {
		srv.TLSConfig = d.certs.Config("h2", "http/1.1")
	}
	return srv
}

// Serve serves srv (from HTTPServer) on ln: over TLS when the dashboard has TLS files.
func (d *Dashboard) Serve(srv *http.Server, ln net.Listener) error {
	if d.certs != nil {
		return srv.ServeTLS(ln, "", "")
	}
	return srv.Serve(ln)
}

// TLS reports whether the page is served over HTTPS.
func (d *Dashboard) TLS() bool { return d.certs != nil }

// Handler serves the page, its assets, the event stream and the frames, each behind
// the login when there is a users file:
//
//	GET /                         the page
//	GET /static/...               its scripts, styles and the vendored chart library
//	GET /api/events               Server-Sent Events: hello, then state, frames, alert
//	                              (503 with Retry-After when --max-pages are open)
//	GET /api/pages                {"open": N, "max": M}: the pages open and the cap
//	GET /api/state                the hello event's data, as JSON
//	GET /api/frames/CAM/BOOT-ID.jpg  a recent frame of a camera
//	GET /api/alerts/BOOT-SEQ.jpg     the frame that raised an alert in the feed
//
// BOOT is this process's boot id: frame ids and alert numbers start at 1 again in
// the next process, so a URL of another process is 404 and never names a picture
// other than the one the browser may have kept (the JPEGs are immutable).
func (d *Dashboard) Handler() http.Handler {
	static, _ := fs.Sub(web, "web")
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, static, "index.html")
	})
	mux.HandleFunc("GET /api/events", d.serveEvents)
	mux.HandleFunc("GET /api/pages", func(w http.ResponseWriter, r *http.Request) {
		open, limit, _ := d.hub.stats()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(map[string]int{"open": open, "max": limit})
	})
	mux.HandleFunc("GET /api/state", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store") // as /api/pages: a snapshot, for no cache to keep
		json.NewEncoder(w).Encode(d.hello(time.Now()))
	})
	mux.HandleFunc("GET /api/frames/{cam}/{file}", func(w http.ResponseWriter, r *http.Request) {
		c := d.camera(r.PathValue("cam"))
		id, ok := d.jpegID(r.PathValue("file"))
		if c == nil || !ok {
			http.NotFound(w, r)
			return
		}
		f, _ := c.frameByID(id)
		d.serveFrame(w, r, f)
	})
	mux.HandleFunc("GET /api/alerts/{file}", func(w http.ResponseWriter, r *http.Request) {
		seq, ok := d.jpegID(r.PathValue("file"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		d.serveFrame(w, r, d.alertFrame(seq))
	})
	var h http.Handler = mux
	if d.users != nil {
		h = d.users.require(mux)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Names, rules and labels reach the page only as text; should one ever reach it
		// as markup, the browser still runs no script but the page's own, and nothing
		// is fetched from elsewhere. Inline styles stay: the page sets colours with them.
		// X-Frame-Options says frame-ancestors to browsers older than CSP 2; the page
		// links nowhere, and its URLs (camera names) go to nobody as a Referer.
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		if r.ContentLength != 0 {
			// The page sends no bodies. One left unread is read by the server before
			// the answer (up to 256 KiB) with no deadline, as there is no ReadTimeout
			// (it would cut the event stream): a body that never comes would hold the
			// connection, and the goroutine, for good. Refuse it unread, before the
			// login's bcrypt, and close the connection.
			hd.Set("Connection", "close")
			http.NewResponseController(w).SetReadDeadline(time.Now())
			http.Error(w, "the dashboard takes no request bodies", http.StatusRequestEntityTooLarge)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// frameURL is the page's URL of a camera's frame; alertURL that of an alert's.
func (d *Dashboard) frameURL(camera string, id uint64) string {
	return fmt.Sprintf("api/frames/%s/%d-%d.jpg", url.PathEscape(camera), d.boot, id)
}

func (d *Dashboard) alertURL(seq uint64) string {
	return fmt.Sprintf("api/alerts/%d-%d.jpg", d.boot, seq)
}

// jpegID reads "BOOT-123.jpg" of this process's boot id.
func (d *Dashboard) jpegID(file string) (uint64, bool) {
	s, ok := strings.CutSuffix(file, ".jpg")
	if !ok {
		return 0, false
	}
	boot, s, ok := strings.Cut(s, "-")
	if !ok || boot != strconv.FormatInt(d.boot, 10) {
		return 0, false
	}
	id, err := strconv.ParseUint(s, 10, 64)
	return id, err == nil
}

func (d *Dashboard) serveFrame(w http.ResponseWriter, r *http.Request, f *frame) {
	if f == nil {
		http.Error(w, "that frame is gone (the dashboard keeps the last few seconds)", http.StatusNotFound)
		return
	}
	b, err := f.JPEG()
	if err != nil {
		http.Error(w, "encoding the frame: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Cache-Control", "private, max-age=3600, immutable") // its URL names the process: never another picture
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	defer rc.SetWriteDeadline(time.Time{}) // the server keeps a deadline past the request otherwise
	if n, _ := w.Write(b); n > 0 {
		d.frameBytes.Add(uint64(n))
	}
}

// serveEvents streams events to one page until it goes, the server stops, or its
// login leaves the users file; with --max-pages open it refuses the page.
func (d *Dashboard) serveEvents(w http.ResponseWriter, r *http.Request) {
	events, cancel, ok := d.hub.subscribe()
	defer cancel()
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		http.Error(w, fmt.Sprintf("too many open pages: the dashboard serves %d at once (--max-pages); close one", d.cfg.MaxPages),
			http.StatusServiceUnavailable)
		return
	}
	l, loggedIn := loginOf(r)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	first, err := encodeEvent("hello", d.hello(time.Now()))
	if err != nil {
		return
	}
	rc := http.NewResponseController(w)
	defer rc.SetWriteDeadline(time.Time{}) // the server keeps a deadline past the request otherwise
	send := func(msg []byte) bool {
		if !d.stillAllowed(l, loggedIn) {
			d.log.Info("event stream closed: its login is no longer in the users file", "user", l.name)
			return false
		}
		rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(msg); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(append([]byte("retry: 1000\n"), first...)) {
		return
	}
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case msg, ok := <-events:
			if !ok {
				return // too slow: the browser reconnects and starts afresh
			}
			if !send(msg) {
				return
			}
		case <-ping.C:
			if !send([]byte(": ping\n\n")) {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}
