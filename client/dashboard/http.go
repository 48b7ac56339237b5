package dashboard

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"
)

//go:embed web
var web embed.FS

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
	return mux
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
	if n, _ := w.Write(b); n > 0 {
		d.frameBytes.Add(uint64(n))
	}
}

// serveEvents streams events to one page until it goes or the server stops.
func (d *Dashboard) serveEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported here", http.StatusInternalServerError)
		return
	}
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
	w.Write([]byte("retry: 1000\n"))
	w.Write(first)
	fl.Flush()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case msg, ok := <-events:
			if !ok {
				return // too slow: the browser reconnects and starts afresh
			}
			if _, err := w.Write(msg); err != nil {
				return
			}
			fl.Flush()
		case <-ping.C:
			w.Write([]byte(": ping\n\n"))
			fl.Flush()
		case <-r.Context().Done():
			return
		}
	}
}
