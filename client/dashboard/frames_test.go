package dashboard

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// grey is a 64x48 JPEG of one grey level.
func grey(t *testing.T, level uint8) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = level
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// frameURLs gives a dashboard that is not run frame 1 of its camera door (a JPEG of
// one grey level), answered, and an alert on it; it returns the URLs the page is
// given for the frame and for the alert's thumbnail.
func frameURLs(t *testing.T, d *Dashboard, level uint8) (frame, thumb string) {
	t.Helper()
	c := d.cameras[0]
	f := putFrame(c, 1, time.Now())
	f.image = &pb.Image{Data: &pb.Image_Encoded{Encoded: grey(t, level)}}
	c.take(answer(1, "full-body", "Dress"))
	v, ok := c.newest(0)
	if !ok {
		t.Fatal("no frame to show")
	}
	b, _ := json.Marshal(v)
	var m map[string]any
	json.Unmarshal(b, &m)
	frame, _ = m["src"].(string)
	if frame == "" {
		// What the page made of the frame's id before the URLs came from the dashboard.
		frame = "api/frames/door/1.jpg"
	}
	d.addAlert(&pb.Alert{CameraId: "door", Rule: "dress", Label: "Dress", FrameId: 1, CaptureTime: timestamppb.Now()})
	_, feed := d.feedStatus()
	return frame, feed[0].Thumb
}

// getLevel fetches a frame URL from web and returns its status, Cache-Control and,
// for a 200, the picture's grey level.
func getLevel(t *testing.T, web *httptest.Server, path string) (int, string, uint8) {
	t.Helper()
	resp, err := http.Get(web.URL + "/" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, resp.Header.Get("Cache-Control"), 0
	}
	img, err := jpeg.Decode(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, resp.Header.Get("Cache-Control"), color.GrayModel.Convert(img.At(32, 24)).(color.Gray).Y
}

// TestFrameURLsOfAnotherProcess: frame ids and alert numbers start at 1 again in a new
// dashboard process, and the page reloads itself onto it. A frame or a thumbnail the
// browser was told to keep for good (immutable) must not come back under the new
// process's boxes: the URLs carry the process, and the new process refuses the old
// one's (404), while serving its own.
func TestFrameURLsOfAnotherProcess(t *testing.T) {
	old := quietDashboard(t)
	oldFrame, oldThumb := frameURLs(t, old, 40)
	neu := quietDashboard(t)
	if neu.boot == old.boot {
		t.Fatal("two dashboards with one boot id")
	}
	newFrame, newThumb := frameURLs(t, neu, 220)
	oldWeb, newWeb := httptest.NewServer(old.Handler()), httptest.NewServer(neu.Handler())
	defer oldWeb.Close()
	defer newWeb.Close()

	for _, tc := range []struct {
		what, path string
		web        *httptest.Server
		level      uint8
	}{{"the old frame", oldFrame, oldWeb, 40}, {"the old thumbnail", oldThumb, oldWeb, 40},
		{"the new frame", newFrame, newWeb, 220}, {"the new thumbnail", newThumb, newWeb, 220}} {
		code, cc, level := getLevel(t, tc.web, tc.path)
		if code != http.StatusOK || level < tc.level-10 || level > tc.level+10 {
			t.Errorf("%s (%s) from its own process: %d, grey %d; want 200, grey %d", tc.what, tc.path, code, level, tc.level)
		}
		if !strings.Contains(cc, "immutable") {
			t.Errorf("%s: Cache-Control %q, want immutable (its URL is never reused)", tc.what, cc)
		}
	}
	for _, p := range []string{oldFrame, oldThumb} {
		if p == newFrame || p == newThumb {
			t.Errorf("the new process reuses the old one's URL %s", p)
		}
		if code, cc, level := getLevel(t, newWeb, p); code != http.StatusNotFound {
			t.Errorf("the old process's %s from the new one: %d (%s, grey %d), want 404", p, code, cc, level)
		}
	}
}
