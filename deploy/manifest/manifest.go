// Package manifest decodes the deployment manifests in deploy/ strictly, for the
// tests that check them against the Kubernetes (and KServe) API types and the real
// atelierd: a YAML stream splits into documents, each document's apiVersion and kind
// pick its Go type, and any field that type does not have is an error, as it would
// be for `kubectl apply --validate=strict`.
package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Kinds maps "apiVersion/kind" (for example "apps/v1/Deployment") to a constructor
// of the type its documents decode into. A kind not listed is an error.
type Kinds map[string]func() any

// Object is one decoded document and where it came from.
type Object struct {
	Source string // file:document number
	Kind   string // apiVersion/kind
	Value  any    // what Kinds made for Kind, filled in
}

// Decode splits a YAML stream into documents and decodes each strictly into the
// type kinds gives for it. Documents holding only comments are skipped.
func Decode(source string, data []byte, kinds Kinds) ([]Object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []Object
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if commentsOnly(doc) {
			continue
		}
		where := fmt.Sprintf("%s:%d", source, i)
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		kind := tm.APIVersion + "/" + tm.Kind
		newObj, ok := kinds[kind]
		if !ok {
			return nil, fmt.Errorf("%s: kind %q is not one these manifests may use", where, kind)
		}
		v := newObj()
		if err := yaml.UnmarshalStrict(doc, v); err != nil {
			return nil, fmt.Errorf("%s (%s): %w", where, kind, err)
		}
		out = append(out, Object{where, kind, v})
	}
}

// DecodeFile is Decode of a file's contents.
func DecodeFile(path string, kinds Kinds) ([]Object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Decode(path, data, kinds)
}

func commentsOnly(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			return false
		}
	}
	return true
}

// GRPCProbeProblem says what is wrong with probe `name` for a server whose gRPC
// port is port: it must exist, be a native gRPC probe (grpc.health.v1) and name
// that port. It returns "" for a good probe.
func GRPCProbeProblem(name string, p *corev1.Probe, port int32) string {
	switch {
	case p == nil:
		return fmt.Sprintf("no %s probe", name)
	case p.GRPC == nil:
		return fmt.Sprintf("%s probe is not a native gRPC probe", name)
	case p.GRPC.Port != port:
		return fmt.Sprintf("%s probe on port %d, the server listens on %d", name, p.GRPC.Port, port)
	}
	return ""
}

// ProbeService is the health service a gRPC probe asks about ("" is the server).
func ProbeService(p *corev1.Probe) string {
	if p.GRPC == nil || p.GRPC.Service == nil {
		return ""
	}
	return *p.GRPC.Service
}
