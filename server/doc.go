// Package server holds Atelier's gRPC handlers, one file per service. Every handler
// takes the same four steps: check the request, call the core, map the error through
// the one table in errors.go, fill the response.
package server
