// Package batching is Atelier's dynamic batcher. It wraps a model's engine so that
// concurrent Run calls with the same signature, outputs and per-example shapes are
// stacked along the batch dimension into one session run, and each caller gets back
// its own rows.
//
// A call waits at most MaxDelay for company, a batch holds at most MaxBatch rows, the
// queue holds at most QueueSize calls (a full queue refuses at once with ErrQueueFull),
// and a call whose context ends while it waits is answered with the context's error
// and never computed. Because it sits under every request path (classify, detect
// crops, generate, streams), work from all of them shares batches.
package batching
