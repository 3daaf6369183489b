// Package deploytest checks the files under deploy/ against the real tools
// and a real daemon: promtool on the Prometheus config, alert rules and rule
// unit tests, promtool on the live /metrics output, and every query of the
// Grafana dashboard evaluated by a real Prometheus that scraped a daemon
// under synthetic traffic.
//
// The package holds only tests. They need the prometheus and promtool
// binaries (Debian package prometheus, installed by .ci/run) and fail, never
// skip, when they are missing.
package deploytest
