package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/atelier-vision/atelier/internal/batching"
	"github.com/atelier-vision/atelier/internal/precision"
)

// config is atelierd's whole configuration: flags, each with an ATELIER_* variable.
type config struct {
	Listen          string
	MetricsListen   string
	ModelDir        string
	ModelConfig     string
	PollInterval    time.Duration
	MaxMessageBytes int
	StreamWorkers   int
	MaxPixels       int
	IntraOpThreads  int
	InterOpThreads  int
	Batching        batching.Config
	ShutdownGrace   time.Duration
	LogLevel        slog.Level
	LogFormat       string
	TFLogLevel      string
	Security        securityConfig
	Precision       precision.Setting
	// GCHeapFloorMiB is the heap size below which no garbage collection starts
	// (gctune); 0 leaves the collector to GOGC alone.
	GCHeapFloorMiB int
}

// defaultGCHeapFloorMiB is atelierd's heap floor. The server's live Go heap is a few
// MB (TensorFlow's memory is not Go's), so at Go's default target it collects several
// times a second under load; with a floor of 64 MiB about once every few seconds,
// while a large live heap is collected at GOGC as before (docs/BENCHMARKS.md, "Server
// overhead per request").
const defaultGCHeapFloorMiB = 64

// minPollInterval is the shortest --model-poll-interval, the settle time of an
// explicit rescan (models.ManagerOptions.Settle).
const minPollInterval = 250 * time.Millisecond

// parseConfig reads flags from args, with defaults taken from the environment.
func parseConfig(args []string, getenv func(string) string) (config, error) {
	var c config
	fs := flag.NewFlagSet("atelierd", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", ":8500", "address to serve gRPC on")
	fs.StringVar(&c.MetricsListen, "metrics-listen", "", "address for /metrics and /debug/pprof/ over HTTP, e.g. :9500 (empty: off)")
	fs.StringVar(&c.ModelDir, "model-dir", "savedmodels", "model repository: <name>/<version>/saved_model.pb")
	fs.StringVar(&c.ModelConfig, "model-config", "", "model config file: version policy and labels per model (docs/RELOAD.md; empty: latest 1, no labels)")
	fs.DurationVar(&c.PollInterval, "model-poll-interval", 5*time.Second, "how often --model-dir is rescanned for new and removed versions (at least 250ms; 0: only on SIGHUP and ReloadRepository)")
	fs.IntVar(&c.MaxMessageBytes, "max-message-bytes", 64<<20, "largest request accepted, in bytes")
	fs.IntVar(&c.StreamWorkers, "grpc-stream-workers", 0, "goroutines kept to run calls, reused so a call's stack is already grown (0: a new goroutine per call, grpc-go's default)")
	fs.IntVar(&c.MaxPixels, "max-pixels", 50_000_000, "largest decoded image accepted, in pixels")
	fs.IntVar(&c.IntraOpThreads, "intra-op-threads", 0, "TensorFlow threads inside one op (0: one per core)")
	fs.IntVar(&c.InterOpThreads, "inter-op-threads", 0, "TensorFlow ops run in parallel (0: TensorFlow's default)")
	fs.IntVar(&c.Batching.MaxBatch, "batch-max-size", batching.DefaultConfig.MaxBatch, "most examples in one session run (1 turns batching off)")
	fs.DurationVar(&c.Batching.MaxDelay, "batch-max-delay", batching.DefaultConfig.MaxDelay, "longest a request waits for others to share its batch")
	fs.IntVar(&c.Batching.QueueSize, "batch-queue-size", batching.DefaultConfig.QueueSize, "requests that may wait per model; more get RESOURCE_EXHAUSTED")
	fs.IntVar(&c.Batching.Workers, "session-workers", batching.DefaultConfig.Workers, "session runs of one model at once")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", 10*time.Second, "time in-flight calls get to finish on SIGTERM")
	fs.TextVar(&c.LogLevel, "log-level", slog.LevelInfo, "log level: debug (every call), info (failed calls: each server fault, the caller's mistakes at most 10 lines a second), warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.TFLogLevel, "tf-log-level", "2", "TensorFlow's C++ log level (TF_CPP_MIN_LOG_LEVEL): 0 all .. 3 fatal only")
	fs.IntVar(&c.GCHeapFloorMiB, "gc-heap-floor-mib", defaultGCHeapFloorMiB, "no garbage collection starts before the Go heap reaches this many MiB; above it GOGC governs as usual (0: GOGC alone)")
	c.Security.flags(fs)
	fs.Func("precision", "arithmetic of every model: auto (bf16 where the CPU has native bf16 and the model passes its accuracy gate, else fp32), fp32 or bf16 (default auto)", func(v string) (err error) {
		c.Precision, err = precision.ParseSetting(v)
		return err
	})
	c.Precision = precision.Auto
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		env := "ATELIER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		f.Usage += fmt.Sprintf(" [$%s]", env)
		if v := getenv(env); v != "" && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("$%s=%q: %w", env, v, err)
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return c, fmt.Errorf("--log-format must be text or json, not %q", c.LogFormat)
	}
	if err := c.Security.validate(); err != nil {
		return c, err
	}
	if err := c.Batching.Validate(); err != nil {
		return c, err
	}
	if c.PollInterval < 0 {
		return c, fmt.Errorf("--model-poll-interval %v is negative (0 turns polling off)", c.PollInterval)
	}
	// A version folder counts as complete once it is unchanged over one poll: polls
	// closer than an explicit rescan's two looks would take a copy that pauses between
	// two files for a finished one, and rescan the folder without rest.
	if c.PollInterval > 0 && c.PollInterval < minPollInterval {
		return c, fmt.Errorf("--model-poll-interval %v is below %v (0 turns polling off)", c.PollInterval, minPollInterval)
	}
	if c.StreamWorkers < 0 || c.StreamWorkers > 1024 {
		return c, fmt.Errorf("--grpc-stream-workers %d is outside 0..1024", c.StreamWorkers)
	}
	if c.GCHeapFloorMiB < 0 || c.GCHeapFloorMiB > 1<<16 {
		return c, fmt.Errorf("--gc-heap-floor-mib %d is outside 0..65536", c.GCHeapFloorMiB)
	}
	// Below 1 every image would be refused as too large, and the server would serve
	// nothing while looking healthy.
	if c.MaxPixels < 1 {
		return c, fmt.Errorf("--max-pixels %d must be at least 1", c.MaxPixels)
	}
	if c.MaxMessageBytes < 1<<20 {
		return c, fmt.Errorf("--max-message-bytes %d is below 1 MiB", c.MaxMessageBytes)
	}
	return c, nil
}

func (c config) logAttrs() []any {
	return []any{"listen", c.Listen, "metrics_listen", c.MetricsListen, "model_dir", c.ModelDir, "model_config", c.ModelConfig,
		"model_poll_interval", c.PollInterval, "admin_rpcs", c.Security.TokensFile != "", "max_message_bytes", c.MaxMessageBytes,
		"grpc_stream_workers", c.StreamWorkers,
		"max_pixels", c.MaxPixels, "intra_op_threads", c.IntraOpThreads, "inter_op_threads", c.InterOpThreads,
		"batch_max_size", c.Batching.MaxBatch, "batch_max_delay", c.Batching.MaxDelay,
		"batch_queue_size", c.Batching.QueueSize, "session_workers", c.Batching.Workers,
		"shutdown_grace", c.ShutdownGrace, "log_level", c.LogLevel.String(), "tf_log_level", c.TFLogLevel, "precision", c.Precision, "cpu_bf16", precision.HostCPU().String(), "gc_heap_floor_mib", c.GCHeapFloorMiB, "gogc", os.Getenv("GOGC"),
		"cores", runtime.NumCPU()}
}

// allAttrs is logAttrs and the security settings.
func (c config) allAttrs() []any { return append(c.logAttrs(), c.Security.logAttrs()...) }
