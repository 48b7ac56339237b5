// Package stream serves live video: one session per camera stream, with a bounded
// frame queue, in-order results, sliding-window tallies, alert rules, and a hub that
// fans alerts out to every watcher.
//
// A session (Session.Run) has four parts. A receive loop reads frames and pushes them
// into a queue of Options.QueueSize frames. Under PolicyBlock a full queue stops the
// receive loop, so the transport's flow control pushes back on the client and nothing
// is dropped; under PolicyLatest a new frame evicts the oldest queued one, which is
// answered as skipped, so the frames that are served are never more than a queue
// behind. A dispatcher takes frames in arrival order and runs up to Depth of them
// through the per-frame function at once (so one stream's frames can share a model
// batch). The caller's goroutine is the only one that emits: it waits for the results
// in arrival order, updates the tallies, checks the alert rules, and sends results,
// summaries and alerts through the Sink.
//
// The per-frame function is generic (Process[R]), so classify and detect streams share
// all of this; they differ only in what a frame's result is and what it shows
// (Observation).
//
// # Memory per stream
//
// A session holds at most QueueSize queued frames, Depth frames being processed and
// one frame in the receive loop's hands, so QueueSize+Depth+1 frames (13 with the
// default queue of 8): with 640x480 JPEG frames of about 50 KB, under 1 MB of frame
// bytes plus the decoded pixels of the Depth frames in flight (4 x 0.9 MB for
// 640x480 RGB). The worst case is that many frames of the server's largest message
// (--max-message-bytes, 64 MiB by default). On top of that: at most
// 2*MaxPendingSkips skip reports (about 100 bytes each) waiting behind the frames in
// flight, the tally's TallyBuckets+1 buckets of per-category counters (bounded by the
// model's category count), and a few counters per alert rule. gRPC's own stream
// window (up to a few MB) comes on top under PolicyBlock.
package stream
