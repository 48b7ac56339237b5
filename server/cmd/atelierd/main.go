// Command atelierd serves Atelier's models over gRPC.
//
// Every flag has an environment variable of the same name in upper case with an
// ATELIER_ prefix (--model-dir and ATELIER_MODEL_DIR); a flag given on the command line
// wins. The effective configuration is logged at start-up.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/atelier-vision/atelier/internal/connlimit"
	"github.com/atelier-vision/atelier/internal/gctune"
	"github.com/atelier-vision/atelier/internal/lograte"
	"github.com/atelier-vision/atelier/internal/models"
)

// httpErrorLinesPerSecond bounds the metrics server's own error lines: anyone who
// reaches the port can cause one per connection.
const httpErrorLinesPerSecond = 5

func main() {
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "atelierd:", err)
		os.Exit(2)
	}
	startWithTFLogLevel(cfg.TFLogLevel)
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "atelierd:", err)
		os.Exit(1)
	}
}

// startWithTFLogLevel makes sure TensorFlow logs at level: it reads
// TF_CPP_MIN_LOG_LEVEL while its library loads, before main runs, so setting it here
// is too late (57 lines of loader chatter at the default level 2). A process started
// without it set to level runs itself again, with it; the second start finds it set
// and goes on. The process keeps its pid, arguments and open files.
func startWithTFLogLevel(level string) {
	if os.Getenv("TF_CPP_MIN_LOG_LEVEL") == level {
		return
	}
	os.Setenv("TF_CPP_MIN_LOG_LEVEL", level)
	exe, err := os.Executable()
	if err != nil {
		return // TensorFlow keeps the level it read; nothing else depends on it
	}
	err = syscall.Exec(exe, os.Args, os.Environ()) // returns only if it failed
	fmt.Fprintf(os.Stderr, "atelierd: could not restart with TF_CPP_MIN_LOG_LEVEL=%s (%v); TensorFlow logs at its own level\n", level, err)
}

func run(cfg config) error {
	defer gctune.Start(uint64(cfg.GCHeapFloorMiB) << 20).Stop()
	log := newLogger(cfg)
	log.Info("starting atelierd", cfg.allAttrs()...)
	a, err := newApp(cfg, log)
	if err != nil {
		return err
	}
	defer a.close()

	tcp, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	lis := connlimit.New(tcp, cfg.Security.Connections, log)
	a.metrics.AddSource(lis.WriteMetrics)
	// Both servers report here; either one failing ends the process.
	errc := make(chan error, 2)
	if cfg.MetricsListen != "" {
		mlis, err := a.sec.metricsListener(cfg.MetricsListen, log)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		hs := &http.Server{Handler: a.metrics.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: lograte.HTTPErrorLog(log, "metrics http", httpErrorLinesPerSecond)}
		go func() {
			if err := hs.Serve(mlis); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics: %w", err)
			}
		}()
		defer hs.Close()
		log.Info("metrics", "address", mlis.Addr().String(), "paths", "/metrics /debug/pprof/")
	}
	a.srv.SetServing(true)
	log.Info("serving", "address", lis.Addr().String())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a.sec.watch(ctx)
	if cfg.PollInterval > 0 {
		go a.manager.Poll(ctx, cfg.PollInterval)
	}
	go reloadOnSIGHUP(ctx, a, log)
	go func() { errc <- a.srv.GRPC.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", cfg.ShutdownGrace)
	a.srv.Shutdown(cfg.ShutdownGrace)
	log.Info("stopped")
	return nil
}

func newLogger(cfg config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// reloadOnSIGHUP re-reads the TLS and token files, the model config and the model
// folder at every SIGHUP (the model part as the ReloadRepository RPC does).
func reloadOnSIGHUP(ctx context.Context, a *app, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP: re-reading the TLS and token files, the model config and the model folder")
			a.sec.reload()
			switch err := a.manager.Reload(ctx, false); {
			case errors.Is(err, models.ErrConfig):
				log.Error("reload on SIGHUP refused; the old config stays", "err", err)
			case err != nil:
				// The config was read and is in use; only the rescan failed (--model-dir
				// gone or unreadable), which changes nothing that is loaded.
				log.Error("reload on SIGHUP: the config is in use, but the model folder could not be scanned; what is loaded serves on", "err", err)
			default:
				log.Info("reloaded on SIGHUP")
			}
		}
	}
}
