package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestWrite(t *testing.T) {
	r := New()
	r.ObserveRPC("/atelier.v1.ClassifyService/Classify", "OK", 20*time.Millisecond)
	r.ObserveRPC("/atelier.v1.ClassifyService/Classify", "OK", 30*time.Millisecond)
	r.ObserveRPC("/atelier.v1.ClassifyService/Classify", "InvalidArgument", time.Millisecond)
	r.AddSource(func(w io.Writer) { io.WriteString(w, "extra_metric 7\n") })
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`atelier_rpc_total{method="/atelier.v1.ClassifyService/Classify",code="OK"} 2`,
		`atelier_rpc_total{method="/atelier.v1.ClassifyService/Classify",code="InvalidArgument"} 1`,
		"atelier_goroutines ", "process_resident_memory_bytes ", "extra_metric 7",
	} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("metrics lack %q:\n%s", want, body)
		}
	}
	if RSS() <= 0 {
		t.Fatalf("got RSS %d, want > 0", RSS())
	}
}
