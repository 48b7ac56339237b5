// Package client is the Go client library for Atelier, the gRPC model server for
// fashion vision.
//
// New connects to one server or, given a comma-separated list of addresses or a dns:
// target (a Kubernetes headless Service), to several with client-side round-robin
// over those whose grpc.health.v1 status is SERVING; a dns: name is looked up again
// every DefaultResolveInterval, so replicas that come and go are followed. Every unary call gets a deadline (WithTimeout, 30 s by
// default, or the context's own if it is earlier). The read-only and idempotent calls
// (Classify, Detect, Generate, ListModels, GetModel, ModelStatus, Health) are retried on
// UNAVAILABLE through the gRPC service config, so a server that stops mid-run costs no
// failed calls while another is up; the admin calls, which change the server, are
// tried once. A unary call the server's rate limit refuses
// (RESOURCE_EXHAUSTED with a retry-after trailer) is tried again once the wait the
// server asks for is over, for as long as the call's deadline allows. Plaintext is the default only for loopback addresses;
// anything else needs WithTLS (or, deliberately, WithInsecure).
//
// The unary helpers take and return the API's own messages (package
// github.com/atelier-vision/atelier/proto/atelier/v1), so every field of the API is
// reachable; ImageFile, ImageBytes and ImageOf build the images they carry. The stream
// helpers (ClassifyStream, DetectStream, Interpolate, WatchAlerts) hide the send and
// receive goroutines: frames come from an iterator, and a callback sees every message
// the server sends, in order.
//
// Errors are the server's gRPC status errors, unchanged: use status.Code(err) to tell
// INVALID_ARGUMENT from NOT_FOUND or UNAVAILABLE.
package client
