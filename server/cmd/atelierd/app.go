package main

import (
	"log/slog"
	"time"

	"github.com/atelier-vision/atelier/internal/batching"

	"github.com/atelier-vision/atelier/internal/classify"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/prep"
	"github.com/atelier-vision/atelier/internal/tf"
	"github.com/atelier-vision/atelier/server"
)

// app is the wired server: the model repository, the request cores and the gRPC server.
type app struct {
	repo    *models.Repository
	resizer *tf.Resizer
	srv     *server.Server
}

// newApp loads the models and builds the gRPC server; it does not listen yet.
func newApp(cfg config, log *slog.Logger) (*app, error) {
	start := time.Now()
	load := models.TFLoader(tf.Options{IntraOpThreads: cfg.IntraOpThreads, InterOpThreads: cfg.InterOpThreads})
	repo, err := models.Open(cfg.ModelDir, batched(load, cfg.Batching), log)
	if err != nil {
		return nil, err
	}
	resizer, err := tf.NewResizer()
	if err != nil {
		repo.Close()
		return nil, err
	}
	log.Info("models ready", "models", repo.Names(), "took", time.Since(start).Round(time.Millisecond))

	limits := imageio.Limits{MaxPixels: cfg.MaxPixels, MaxSide: imageio.DefaultLimits.MaxSide}
	classifier := &classify.Classifier{Repo: repo, Prep: &prep.Preparer{Limits: limits, Resizer: resizer}}
	srv := server.New(server.Options{MaxMessageBytes: cfg.MaxMessageBytes, Log: log}, repo, server.Cores{
		Classifier: classifier,
	})
	return &app{repo: repo, resizer: resizer, srv: srv}, nil
}

// batched wraps every loaded model's engine in a dynamic batcher.
func batched(load models.Loader, cfg batching.Config) models.Loader {
	return func(dir string) (models.Engine, []tf.Signature, error) {
		engine, sigs, err := load(dir)
		if err != nil {
			return nil, nil, err
		}
		b, err := batching.New(engine, cfg)
		if err != nil {
			engine.Close()
			return nil, nil, err
		}
		return b, sigs, nil
	}
}

// close releases the models; call it after the server has stopped.
func (a *app) close() {
	a.resizer.Close()
	a.repo.Close()
}
