package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

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

// HTTPServer returns a server for the page: Handler, the limits above, a 10 s limit on
// a request's headers and 64 KiB of them (the page sends no bodies). Requests' contexts
// derive from base, so ending base ends the event streams and lets Shutdown finish.
func (d *Dashboard) HTTPServer(base context.Context) *http.Server {
	return &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idleTimeout,
		MaxHeaderBytes: 64 << 10, BaseContext: func(net.Listener) context.Context { return base }}
}

// Handler serves the page, its assets, the event stream and the frames:
//
//	GET /                         the page
//	GET /static/...               its scripts, styles and the vendored chart library
//	GET /api/events               Server-Sent Events: hello, then state, frames, alert
//	GET /api/state                the hello event's data, as JSON
//	GET /api/frames/CAM/ID.jpg    a recent frame of a camera
//	GET /api/alerts/SEQ.jpg       the frame that raised an alert in the feed
func (d *Dashboard) Handler() http.Handler {
	static, _ := fs.Sub(web, "web")
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, static, "index.html")
	})
	mux.HandleFunc("GET /api/events", d.serveEvents)
	mux.HandleFunc("GET /api/state", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(d.hello(time.Now()))
	})
	mux.HandleFunc("GET /api/frames/{cam}/{file}", func(w http.ResponseWriter, r *http.Request) {
		c := d.camera(r.PathValue("cam"))
		id, ok := jpegID(r.PathValue("file"))
		if c == nil || !ok {
			http.NotFound(w, r)
			return
		}
		f, _ := c.frameByID(id)
		d.serveFrame(w, r, f)
	})
	mux.HandleFunc("GET /api/alerts/{file}", func(w http.ResponseWriter, r *http.Request) {
		seq, ok := jpegID(r.PathValue("file"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		d.serveFrame(w, r, d.alertFrame(seq))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Names, rules and labels reach the page only as text; should one ever reach it
		// as markup, the browser still runs no script but the page's own, and nothing
		// is fetched from elsewhere. Inline styles stay: the page sets colours with them.
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(w, r)
	})
}

// jpegID reads "123.jpg".
func jpegID(file string) (uint64, bool) {
	s, ok := strings.CutSuffix(file, ".jpg")
	if !ok {
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
	w.Header().Set("Cache-Control", "private, max-age=3600, immutable") // a frame id never changes its picture
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	defer rc.SetWriteDeadline(time.Time{}) // the server keeps a deadline past the request otherwise
	if n, _ := w.Write(b); n > 0 {
		d.frameBytes.Add(uint64(n))
	}
}

// serveEvents streams events to one page until it goes or the server stops.
func (d *Dashboard) serveEvents(w http.ResponseWriter, r *http.Request) {
	events, cancel := d.hub.subscribe()
	defer cancel()
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
