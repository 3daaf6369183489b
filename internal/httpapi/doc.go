// Package httpapi serves the daemon's HTTP interface: /healthz, /readyz,
// /metrics and the /v1 API. Handlers answer bad requests with a 4xx and a
// JSON body naming the problem, and never panic on input.
package httpapi
