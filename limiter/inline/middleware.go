package inline

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// Decider answers whether a request is refused; *Checker implements it.
type Decider interface {
	Check(e *event.Event) Result
	Rules() *limiter.Ruleset // for the RateLimit-Policy field; may return nil
}

// Recorder reports a request to ratemon; *Publisher implements it.
type Recorder interface {
	PublishTimed(e *event.Event, latency time.Duration) bool
}

// MiddlewareOptions configures a Middleware. Service is required.
type MiddlewareOptions struct {
	Service   string   // the service of the events, as rules match it; required
	Checker   Decider  // refuses denied clients; nil: nobody is refused
	Publisher Recorder // reports every request; nil: nothing is reported
	// The client of a request is the first of: Client(r) when set and not
	// empty; the APIKeyHeader header (default "X-API-Key"; "-" to ignore
	// it); BearerSubject(token) of an "Authorization: Bearer" token when
	// set; the client IP. BearerSubject must verify the token (see
	// UnverifiedSubject). A value longer than 128 bytes is replaced by its
	// SHA-256 ("sha256:<32 hex digits>").
	Client        func(r *http.Request) string
	APIKeyHeader  string
	BearerSubject func(token string) (subject string, ok bool)
	// TrustedProxies are the proxies whose X-Forwarded-For is believed
	// (see ClientIP). Empty: the peer address is the client IP.
	TrustedProxies []netip.Prefix
	// Route returns the route pattern of r. Default: the pattern of the
	// *http.ServeMux wrapped by Handler ("GET /stocks/{symbol}/history");
	// with another router, the route is empty, so rules matching on routes
	// see only r.Pattern after the handler ran.
	Route func(r *http.Request) string
	// SkipPaths are paths neither checked nor reported (health checks,
	// metrics). Skip, when set, skips more requests.
	SkipPaths []string
	Skip      func(r *http.Request) bool
	Clock     limiter.Clock // default: the wall clock
	Logger    *slog.Logger
}

// Middleware checks and reports the requests of a net/http server: a
// request whose client is denied is answered 429 (see writeRefusal)
// without reaching the handler, and every request, served or refused, is
// published after its response with its status and latency. Refused
// requests are marked refused, which rules do not count unless they say
// count_refused, so a client hammering while denied recovers when its
// window frees up.
type Middleware struct {
	opts MiddlewareOptions
	skip map[string]bool
	log  *slog.Logger
}

// NewMiddleware validates the options.
func NewMiddleware(opts MiddlewareOptions) (*Middleware, error) {
	if err := keyspace.ValidateService(opts.Service); err != nil {
		return nil, fmt.Errorf("inline middleware: service: %w", err)
	}
	if opts.Checker == nil && opts.Publisher == nil {
		return nil, errors.New("inline middleware: give a checker, a publisher, or both")
	}
	setDefault(&opts.APIKeyHeader, "X-API-Key")
	if opts.Clock == nil {
		opts.Clock = limiter.WallClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Middleware{opts: opts, skip: map[string]bool{}, log: opts.Logger.With("component", "inline_http")}
	for _, p := range opts.SkipPaths {
		m.skip[p] = true
	}
	return m, nil
}

// Handler wraps next. When next is an *http.ServeMux, the route pattern is
// found before the check, so rules keyed or matched on routes apply.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	mux, _ := next.(*http.ServeMux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.serve(w, r, next, mux)
	})
}

func (m *Middleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler, mux *http.ServeMux) {
	if m.skip[r.URL.Path] || (m.opts.Skip != nil && m.opts.Skip(r)) {
		next.ServeHTTP(w, r)
		return
	}
	start := m.opts.Clock.Now()
	ev := event.Event{TS: start.UnixMilli(), Service: m.opts.Service, Method: r.Method, Weight: 1}
	ev.IP = ClientIP(r, m.opts.TrustedProxies)
	ev.Client = m.client(r, ev.IP)
	switch {
	case m.opts.Route != nil:
		ev.Route = m.opts.Route(r)
	case mux != nil:
		_, pattern := mux.Handler(r)
		ev.Route = routeOf(pattern)
	}
	if c := m.opts.Checker; c != nil {
		if res := c.Check(&ev); res.Denied {
			ev.Status = writeRefusal(w, res, c.Rules(), start)
			ev.Refused = true
			m.publish(&ev, start)
			return
		}
	}
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		rec := recover()
		if ev.Route == "" {
			ev.Route = routeOf(r.Pattern)
		}
		ev.Status = sw.status
		if rec != nil && !sw.wrote {
			ev.Status = http.StatusInternalServerError
		} else if !sw.wrote {
			ev.Status = http.StatusOK
		}
		m.publish(&ev, start)
		if rec != nil {
			panic(rec)
		}
	}()
	next.ServeHTTP(sw, r)
}

func (m *Middleware) publish(ev *event.Event, start time.Time) {
	if m.opts.Publisher != nil {
		m.opts.Publisher.PublishTimed(ev, m.opts.Clock.Now().Sub(start))
	}
}

// client identifies the client of r (see MiddlewareOptions.Client).
func (m *Middleware) client(r *http.Request, ip string) string {
	if m.opts.Client != nil {
		if v := m.opts.Client(r); v != "" {
			return boundClient(v)
		}
	}
	if h := m.opts.APIKeyHeader; h != "-" {
		if v := r.Header.Get(h); v != "" {
			return boundClient(v)
		}
	}
	if m.opts.BearerSubject != nil {
		if tok, ok := BearerToken(r); ok {
			if sub, ok := m.opts.BearerSubject(tok); ok && sub != "" {
				return boundClient(sub)
			}
		}
	}
	return ip
}

// routeOf turns a ServeMux pattern, "[METHOD ][HOST]/PATH", into the
// event's route, "[METHOD ]/PATH": the host is dropped, so that rules
// matching paths match it.
func routeOf(pattern string) string {
	if pattern == "" {
		return ""
	}
	method, rest := "", pattern
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		method, rest = pattern[:i], strings.TrimLeft(pattern[i+1:], " \t")
	}
	if j := strings.IndexByte(rest, '/'); j > 0 {
		rest = rest[j:]
	}
	if method == "" {
		return rest
	}
	return method + " " + rest
}

// statusWriter remembers the status of the response.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 { // 1xx are informational; the final status follows
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Flush passes http.Flusher through.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if !w.wrote {
			w.status, w.wrote = http.StatusOK, true
		}
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
