package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/atelier-vision/atelier/internal/metrics"
	"github.com/atelier-vision/atelier/internal/precision"
	"github.com/atelier-vision/atelier/internal/tensor"
	"google.golang.org/grpc"

	"github.com/atelier-vision/atelier/internal/batching"

	"github.com/atelier-vision/atelier/internal/classify"
	"github.com/atelier-vision/atelier/internal/detect"
	"github.com/atelier-vision/atelier/internal/generate"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/inference"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/prep"
	"github.com/atelier-vision/atelier/internal/stream"
	"github.com/atelier-vision/atelier/internal/tf"
	"github.com/atelier-vision/atelier/server"
)

// app is the wired server: the model repository, the request cores and the gRPC server.
type app struct {
	manager *models.Manager
	repo    *models.Repository
	resizer *tf.Resizer
	srv     *server.Server
	metrics *metrics.Registry
	sec     *security
}

// newApp loads the models and builds the gRPC server; it does not listen yet.
func newApp(cfg config, log *slog.Logger) (*app, error) {
	start := time.Now()
	sec, err := newSecurity(cfg.Security, log)
	if err != nil {
		return nil, err
	}
	load := tfLoader(tf.Options{IntraOpThreads: cfg.IntraOpThreads, InterOpThreads: cfg.InterOpThreads}, cfg.Precision, cfg.Batching.MaxBatch, log)
	manager, err := models.NewManager(models.ManagerOptions{
		Root: cfg.ModelDir, ConfigPath: cfg.ModelConfig, Load: batched(load, cfg.Batching), Log: log,
		Warm:        func(ctx context.Context, m *models.Model) error { return models.WarmUp(ctx, m, cfg.Batching.MaxBatch) },
		AfterUnload: tf.TrimHeap,
	})
	if err != nil {
		return nil, err
	}
	if err := manager.Start(context.Background()); err != nil {
		manager.Close()
		return nil, err
	}
	repo := manager.Repository()
	resizer, err := tf.NewResizer()
	if err != nil {
		manager.Close()
		return nil, err
	}
	log.Info("models ready", "models", repo.Names(), "took", time.Since(start).Round(time.Millisecond))

	limits := imageio.Limits{MaxPixels: cfg.MaxPixels, MaxSide: imageio.DefaultLimits.MaxSide}
	classifier := &classify.Classifier{Repo: repo, Prep: &prep.Preparer{Limits: limits, Resizer: resizer}}
	reg := metrics.New()
	reg.AddSource(func(w io.Writer) { writeBatchStats(w, repo) })
	reg.AddSource(manager.WriteMetrics)
	reg.AddSource(func(w io.Writer) {
		fmt.Fprintln(w, "# HELP atelier_tensorflow_cpu_seconds_total CPU time spent running TensorFlow sessions (tf.SessionCPU); process_cpu_seconds_total minus this is the server's own work.")
		fmt.Fprintln(w, "# TYPE atelier_tensorflow_cpu_seconds_total counter")
		fmt.Fprintf(w, "atelier_tensorflow_cpu_seconds_total %g\n", tf.SessionCPU().Seconds())
	})
	alerts := stream.NewHub(stream.DefaultWatchBuffer)
	reg.AddSource(func(w io.Writer) {
		watchers, lost := alerts.Stats()
		fmt.Fprintf(w, "# HELP atelier_alert_watchers Open WatchAlerts streams.\n# TYPE atelier_alert_watchers gauge\natelier_alert_watchers %d\n", watchers)
		fmt.Fprintf(w, "# HELP atelier_alert_watchers_cut_off_total WatchAlerts streams ended because they fell behind.\n# TYPE atelier_alert_watchers_cut_off_total counter\natelier_alert_watchers_cut_off_total %d\n", lost)
	})
	grpcOpts := slices.Clip(sec.grpc) // appending never writes into sec's array
	if cfg.StreamWorkers > 0 {
		grpcOpts = append(grpcOpts, grpc.NumStreamWorkers(uint32(cfg.StreamWorkers)))
	}
	srv := server.New(server.Options{
		MaxMessageBytes: cfg.MaxMessageBytes, Log: log, Metrics: reg,
		Security: sec.server, NoReflection: cfg.Security.Reflection == "off", GRPC: grpcOpts,
	}, repo, server.Cores{
		Classifier: classifier,
		Generator:  &generate.Generator{Repo: repo},
		Detector:   &detect.Detector{Repo: repo, Prep: classifier.Prep},
		Alerts:     alerts,
		Inference:  &inference.Server{Repo: repo, Prep: classifier.Prep},
		Models:     manager,
	})
	return &app{manager: manager, repo: repo, resizer: resizer, srv: srv, metrics: reg, sec: sec}, nil
}

// batchMetrics are the batchers' metrics, each a figure of one model version's engine.
var batchMetrics = []struct {
	name, typ, help string
	value           func(c batching.Counts, b *batching.Engine) float64
}{
	{"atelier_batch_runs_total", "counter", "Session runs (batches) of a model version: its inference executions.",
		func(c batching.Counts, _ *batching.Engine) float64 { return float64(c.Runs) }},
	{"atelier_batch_rows_total", "counter", "Examples (images, latent vectors) run through a model version: its inferences. rows / runs is the mean batch size.",
		func(c batching.Counts, _ *batching.Engine) float64 { return float64(c.Rows) }},
	{"atelier_batch_expired_total", "counter", "Calls whose deadline passed or whose caller left while queued.",
		func(c batching.Counts, _ *batching.Engine) float64 { return float64(c.Expired) }},
	{"atelier_batch_refused_total", "counter", "Calls refused with RESOURCE_EXHAUSTED because the model version's queue was full.",
		func(c batching.Counts, _ *batching.Engine) float64 { return float64(c.Refused) }},
	{"atelier_batch_failed_total", "counter", "Calls the model version answered with an error: their batch's session run (or stacking its inputs, or slicing its outputs) failed.",
		func(c batching.Counts, _ *batching.Engine) float64 { return float64(c.Failed) }},
	{"atelier_batch_queue_seconds_total", "counter", "Time calls that ran waited in the queue for their batch, summed over the calls.",
		func(c batching.Counts, _ *batching.Engine) float64 { return c.Queued.Seconds() }},
	{"atelier_batch_compute_seconds_total", "counter", "Time of the batches (stacking inputs, the session run, slicing outputs), summed over the batches.",
		func(c batching.Counts, _ *batching.Engine) float64 { return c.Computed.Seconds() }},
	{"atelier_batch_queued", "gauge", "Calls waiting in the model version's queue now.",
		func(_ batching.Counts, b *batching.Engine) float64 { return float64(b.Waiting()) }},
}

// writeBatchStats writes each model version's batching metrics, one family at a time,
// from one snapshot of each engine's figures.
func writeBatchStats(w io.Writer, repo *models.Repository) {
	type engine struct {
		labels string
		b      *batching.Engine
		counts batching.Counts
	}
	var engines []engine
	for _, name := range repo.Names() {
		versions, _ := repo.Versions(name)
		for _, m := range versions {
			if b, ok := m.Engine.(*batching.Engine); ok {
				engines = append(engines, engine{fmt.Sprintf("{model=%s,version=\"%d\"}", metrics.Label(m.Name), m.Version), b, b.Stats().Snapshot()})
			}
		}
	}
	for _, bm := range batchMetrics {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", bm.name, bm.help, bm.name, bm.typ)
		for _, e := range engines {
			fmt.Fprintf(w, "%s%s %g\n", bm.name, e.labels, bm.value(e.counts, e.b))
		}
	}
	fmt.Fprintln(w, "# HELP atelier_batch_size Session runs of a model version by their rows (examples): how full the batches are.")
	fmt.Fprintln(w, "# TYPE atelier_batch_size histogram")
	for _, e := range engines {
		sizes := e.counts.Sizes
		inner := strings.TrimSuffix(e.labels, "}")
		for i, le := range batching.SizeBuckets {
			fmt.Fprintf(w, "atelier_batch_size_bucket%s,le=\"%d\"} %d\n", inner, le, sizes[i])
		}
		fmt.Fprintf(w, "atelier_batch_size_bucket%s,le=\"+Inf\"} %d\n", inner, sizes[len(sizes)-1])
		fmt.Fprintf(w, "atelier_batch_size_sum%s %d\n", e.labels, e.counts.Rows)
		fmt.Fprintf(w, "atelier_batch_size_count%s %d\n", e.labels, sizes[len(sizes)-1])
	}
}

// tfLoader opens SavedModels with TensorFlow, each in the precision its setting
// resolves to (the model's own from the config, else the server's), logged with the
// reason. Where auto chooses bf16, a second session in fp32 is timed beside it at the
// batch sizes the batcher forms (precision.Calibrate): batches below the size from
// which bf16 is faster on this CPU run in fp32, and a session that never runs is closed.
func tfLoader(opts tf.Options, server precision.Setting, maxBatch int, log *slog.Logger) models.Loader {
	host := precision.HostCPU()
	known := &precision.Calibrations{}
	return func(dir string, setting precision.Setting) (models.Loaded, error) {
		if setting == "" {
			setting = server
		}
		gate, gateErr := precision.ReadGate(dir)
		p, why := precision.Choose(setting, host, gate, gateErr)
		log.Info("model precision", "dir", dir, "precision", p, "why", why)
		opts := opts
		opts.Precision = p
		m, err := tf.Load(dir, opts)
		if err != nil {
			return models.Loaded{}, err
		}
		l := models.Loaded{Engine: m, Signatures: m.Signatures(), Precision: p}
		if p != precision.BF16 || setting != precision.Auto {
			return l, nil
		}
		return calibrated(l, dir, opts, maxBatch, log, known)
	}
}

// calibrated loads dir again in fp32 beside its bf16 session l, times both, and keeps
// what pays: bf16 alone, fp32 alone, or both behind a precision.Split. A graph timed
// before (known) is not timed again: a version copied in, or new weights for the same
// graph, reuses its calibration, and so does not load fp32 at all where bf16 paid at
// every size.
func calibrated(l models.Loaded, dir string, opts tf.Options, maxBatch int, log *slog.Logger, known *precision.Calibrations) (models.Loaded, error) {
	bf16 := l.Engine
	key, keyErr := precision.GraphKey(dir)
	c, reused := known.Get(key)
	reused = reused && keyErr == nil
	if reused {
		log.Info("bf16 calibration", "dir", dir, "result", c.String(), "reused", "the same graph was timed before")
		if c.MinBatch == 1 {
			return l, nil
		}
	}
	opts.Precision = precision.FP32
	fp32, err := tf.Load(dir, opts)
	if err != nil {
		bf16.Close()
		return models.Loaded{}, err
	}
	var sig tensor.Signature
	for _, s := range l.Signatures {
		if s.Name == models.ServingSignature {
			sig = s
		}
	}
	if !reused {
		c, err = precision.Calibrate(context.Background(), fp32, bf16, sig, models.WarmupSizes(maxBatch), time.Now)
		if err == nil {
			log.Info("bf16 calibration", "dir", dir, "result", c.String())
			if keyErr == nil {
				known.Put(key, c)
			}
		}
	}
	switch {
	case err != nil:
		// The warm-up that follows reports a model that cannot run; a model that runs
		// but cannot be timed (say, unknown input sizes) keeps bf16 throughout.
		log.Warn("bf16 calibration failed; running bf16 at every batch size", "dir", dir, "err", err)
		fp32.Close()
	case c.MinBatch == 1:
		fp32.Close()
	case c.MinBatch == 0:
		bf16.Close()
		l.Engine, l.Precision = fp32, precision.FP32
	default:
		l.Engine, l.BF16MinBatch = &precision.Split{FP32: fp32, BF16: bf16, MinBatch: c.MinBatch}, c.MinBatch
	}
	return l, nil
}

// batched wraps every loaded model's engine in a dynamic batcher.
func batched(load models.Loader, cfg batching.Config) models.Loader {
	return func(dir string, setting precision.Setting) (models.Loaded, error) {
		l, err := load(dir, setting)
		if err != nil {
			return l, err
		}
		b, err := batching.New(l.Engine, cfg)
		if err != nil {
			l.Engine.Close()
			return models.Loaded{}, err
		}
		l.Engine = b
		return l, nil
	}
}

// close releases the models; call it after the server has stopped.
func (a *app) close() {
	a.resizer.Close()
	a.manager.Close()
}
