package tf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/atelier-vision/atelier/internal/precision"
	"github.com/atelier-vision/atelier/internal/tensor"
	tfb "github.com/galeone/tensorflow/tensorflow/go"
	corepb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// Options configures how Load opens a SavedModel.
type Options struct {
	// Tags select the MetaGraph to load; nil means {"serve"}.
	Tags []string
	// IntraOpThreads sizes the pool one op uses to parallelise itself; 0 is
	// TensorFlow's default (one per core).
	IntraOpThreads int
	// InterOpThreads sizes the pool independent ops run on; 0 is TensorFlow's default
	// and a negative value runs ops on the calling thread.
	InterOpThreads int
	// Precision is fp32 (also when empty) or bf16: grappler's oneDNN bfloat16 rewrite,
	// which runs the graph's matrix work in bf16 with fp32 accumulation.
	Precision precision.Precision
}

// bf16Lists moves Softmax from the bf16 rewrite's infer list to its deny list, so it
// stays fp32: in bf16, probabilities sum to 1 only within 0.5%; in fp32, after the
// bf16 matrix work, within fp32 rounding, at no measurable cost. (An op in two lists
// makes the whole rewrite fail, hence both.)
var bf16Lists = map[string]string{
	"TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_INFERLIST_REMOVE": "Softmax",
	"TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_DENYLIST_ADD":     "Softmax",
}

func init() {
	// Grappler reads its mixed-precision lists from the environment, once; an
	// operator's own setting wins.
	for env, v := range bf16Lists {
		if os.Getenv(env) == "" {
			os.Setenv(env, v)
		}
	}
}

// Model is a loaded SavedModel. It is safe for concurrent use.
type Model struct {
	dir    string
	sess   *tfb.Session
	graph  *tfb.Graph // kept alive with the session
	sigs   map[string]*signature
	list   []tensor.Signature
	closed atomic.Bool
	once   sync.Once
	err    error
}

// Load opens the SavedModel in dir and reads its signatures.
func Load(dir string, opts Options) (m *Model, err error) {
	defer func() {
		if err != nil && m != nil {
			m.sess.Close()
			m = nil
		}
	}()
	defer recoverTo(&err, "tf: load SavedModel "+dir+": ")
	wrap := func(err error) error { return fmt.Errorf("tf: load SavedModel %s: %w", dir, err) }
	if err := isSavedModel(dir); err != nil {
		return nil, wrap(err)
	}
	tags := opts.Tags
	if len(tags) == 0 {
		tags = []string{"serve"}
	}
	so, err := sessionOptions(opts)
	if err != nil {
		return nil, wrap(err)
	}
	var sm *tfb.SavedModel
	withoutProfSignal(func() { sm, err = tfb.LoadSavedModel(dir, tags, so) })
	if err != nil {
		return nil, wrap(err)
	}
	m = &Model{dir: dir, sess: sm.Session, graph: sm.Graph, sigs: map[string]*signature{}}
	for name, s := range sm.Signatures {
		if strings.HasPrefix(name, "__saved_model_") {
			continue // TensorFlow's own init and train ops, not for serving
		}
		sig, err := newSignature(sm.Graph, name, s)
		if err != nil {
			return m, wrap(err)
		}
		m.sigs[name] = sig
		m.list = append(m.list, sig.Signature)
	}
	slices.SortFunc(m.list, func(a, b tensor.Signature) int { return strings.Compare(a.Name, b.Name) })
	return m, nil
}

// isSavedModel gives a clear error for a folder TensorFlow cannot load, before
// TensorFlow logs its own.
func isSavedModel(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return errors.New("not a directory")
	}
	for _, f := range []string{"saved_model.pb", "saved_model.pbtxt"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return nil
		}
	}
	return errors.New("not a SavedModel: no saved_model.pb or saved_model.pbtxt")
}

// sessionOptions serialises the thread and precision settings into a ConfigProto.
func sessionOptions(opts Options) (*tfb.SessionOptions, error) {
	cfg := &corepb.ConfigProto{
		IntraOpParallelismThreads: int32(opts.IntraOpThreads),
		InterOpParallelismThreads: int32(opts.InterOpThreads),
	}
	switch opts.Precision {
	case "", precision.FP32:
	case precision.BF16:
		cfg.GraphOptions = &corepb.GraphOptions{RewriteOptions: &corepb.RewriterConfig{
			AutoMixedPrecisionOnednnBfloat16: corepb.RewriterConfig_ON,
		}}
	default:
		return nil, fmt.Errorf("precision %q: want fp32 or bf16", opts.Precision)
	}
	b, err := proto.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("session config: %w", err)
	}
	return &tfb.SessionOptions{Config: b}, nil
}

// Dir returns the folder the model was loaded from.
func (m *Model) Dir() string { return m.dir }

// Signatures returns the model's signatures sorted by name. Callers must not modify
// the result.
func (m *Model) Signatures() []tensor.Signature { return m.list }

// Signature returns the signature called name.
func (m *Model) Signature(name string) (tensor.Signature, bool) {
	s, ok := m.sigs[name]
	if !ok {
		return tensor.Signature{}, false
	}
	return s.Signature, true
}

// Close closes the session after the runs in flight finish. Later calls return the
// first call's result; Run after Close returns tensor.ErrClosed.
func (m *Model) Close() error {
	m.once.Do(func() {
		m.closed.Store(true)
		if err := m.sess.Close(); err != nil {
			m.err = fmt.Errorf("tf: close %s: %w", m.dir, err)
		}
	})
	return m.err
}

// recoverTo turns a panic into an error in *err, starting with prefix; call it
// deferred.
func recoverTo(err *error, prefix string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%spanic in the TensorFlow bindings: %v", prefix, r)
	}
}
