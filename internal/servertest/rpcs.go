package servertest

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/atelier-vision/atelier/internal/testenv"
)

// RPC is what the tests need to call one RPC.
type RPC struct {
	// Model is the built model the RPC needs to answer ("" for none).
	Model string `json:"model"`
}

//go:embed rpcs.json
var rpcsJSON []byte

// RPCs maps each RPC's name (Classify, DetectStream, ...) to what it needs, from
// rpcs.json, which the Python tests read too.
var RPCs = func() map[string]RPC {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(rpcsJSON, &m); err != nil {
		panic(fmt.Sprintf("servertest: rpcs.json: %v", err))
	}
	rpcs := map[string]RPC{}
	for name, raw := range m {
		if name[0] == '_' {
			continue
		}
		var r RPC
		if err := json.Unmarshal(raw, &r); err != nil {
			panic(fmt.Sprintf("servertest: rpcs.json %s: %v", name, err))
		}
		rpcs[name] = r
	}
	return rpcs
}()

// Require checks that rpc's model is built: a missing one skips the test (fails it
// under CI=true).
func Require(t testing.TB, rpc string) {
	t.Helper()
	r, ok := RPCs[rpc]
	if !ok {
		t.Fatalf("servertest: %s is not in rpcs.json", rpc)
	}
	if r.Model == "" {
		return
	}
	dir, err := ModelDir()
	if err != nil {
		skipIfMissing(t, err)
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, r.Model, "*", "saved_model.pb")); len(m) == 0 {
		testenv.Missing(t, "the built model "+r.Model+" (for "+rpc+")", "run `make models`")
	}
}
