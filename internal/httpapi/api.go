package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// Health reports whether the daemon can do its job, and why not.
type Health interface {
	Ready() (ok bool, problems []string)
}

// Checker answers GET /v1/check; *limiter.Store implements it.
type Checker interface {
	Check(ctx context.Context, rs *limiter.Ruleset, e event.Event) (limiter.CheckResult, error)
}

// Options wires an API.
type Options struct {
	Checker  Checker                 // required
	Rules    func() *limiter.Ruleset // required
	Health   Health                  // required
	Gatherer prometheus.Gatherer     // required: the daemon's registry
	Admin    *Admin                  // optional: manual blocks, allow-list, overrides, top, shadow
	Alerts   Alerts                  // optional: GET /v1/alerts (alerts.go)
	Logger   *slog.Logger
}

// API is the daemon's HTTP handler.
type API struct {
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux
}

// New validates the options and builds the routes.
func New(opts Options) (*API, error) {
	var errs []error
	if opts.Checker == nil {
		errs = append(errs, errors.New("checker is required"))
	}
	if opts.Rules == nil {
		errs = append(errs, errors.New("rules are required"))
	}
	if opts.Health == nil {
		errs = append(errs, errors.New("health is required"))
	}
	if opts.Gatherer == nil {
		errs = append(errs, errors.New("metrics gatherer is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &API{opts: opts, log: opts.Logger.With("component", "http"), mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /healthz", a.healthz)
	a.mux.HandleFunc("GET /readyz", a.readyz)
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}))
	a.mux.HandleFunc("GET /v1/check", a.check)
	a.routeAdmin()
	a.mux.HandleFunc("GET /v1/rules", a.rules)
	a.mux.HandleFunc("GET /v1/alerts", a.alerts)
	a.mux.HandleFunc("/", a.notFound)
	return a, nil
}

// Handler returns the root handler.
func (a *API) Handler() http.Handler { return a.mux }

func (a *API) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *API) readyz(w http.ResponseWriter, _ *http.Request) {
	ok, problems := a.opts.Health.Ready()
	if !ok {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "problems": problems})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
}

func (a *API) notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
}

// check answers GET /v1/check?client=..&ip=..&route=..&service=..&method=..
func (a *API) check(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for name := range q {
		switch name {
		case "client", "ip", "route", "service", "method":
		default:
			writeError(w, http.StatusBadRequest, "unknown query parameter "+strconvQuote(name)+"; use client, ip, route, service, method")
			return
		}
	}
	e := event.Event{
		Client: q.Get("client"), IP: q.Get("ip"), Route: q.Get("route"),
		Service: q.Get("service"), Method: strings.ToUpper(q.Get("method")), Weight: 1,
	}
	if e.Client == "" && e.IP == "" {
		writeError(w, http.StatusBadRequest, "client or ip is required")
		return
	}
	for _, v := range []string{e.Client, e.IP, e.Route, e.Service, e.Method} {
		if len(v) > 1024 {
			writeError(w, http.StatusBadRequest, "query values must be at most 1024 bytes")
			return
		}
	}
	res, err := a.opts.Checker.Check(r.Context(), a.opts.Rules(), e)
	if err != nil {
		a.log.Warn("check", "err", err)
		writeError(w, http.StatusServiceUnavailable, "redis unavailable: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
