// Package shiptest checks the shipping artifacts under deploy/ (the
// Dockerfile, docker-compose.yml and its files under compose/, the
// Kubernetes manifests and the systemd unit) with what can be checked on a
// machine without a container engine nor a running systemd:
//
//   - every YAML file parses, and every file a compose volume, a build or a
//     kustomization names exists;
//   - ports, addresses and environment variable names agree with the
//     configuration reference (internal/config): the embedded configs load
//     strictly, http.addr's port is the one the containers, probes,
//     Services and scrape targets use;
//   - the Dockerfile builds the binary with the Makefile's command, from
//     the Go version of go.mod, into a non-root image;
//   - the systemd unit passes `systemd-analyze verify`, and the built
//     binary runs (version, config validate, and serve until ready and a
//     clean SIGTERM) under the unit's sandbox as far as it can be
//     reproduced here: an unprivileged user, no new privileges, no
//     capabilities, a read-only file system with a private /tmp.
//
// Not checked here: `docker build` and `docker compose up` (no engine),
// `kubectl apply` (no cluster), and the unit's seccomp, address-family,
// namespace and kernel-protection settings (they need systemd itself).
//
// The package holds only tests. They need go, unshare, setpriv (util-linux),
// systemd-analyze, root (to build the sandbox's mount namespace), the test
// Redis and fail, never skip, when one is missing.
package shiptest
