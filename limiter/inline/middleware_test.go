package inline_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/limiter/inline"
	"github.com/ratemon/ratemon/pipeline/event"
)

// fakeChecker denies the clients of its map until the given time.
type fakeChecker struct {
	mu     sync.Mutex
	denied map[string]inline.Result
	seen   []event.Event
	rules  *limiter.Ruleset
}

func (f *fakeChecker) Check(e *event.Event) inline.Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, *e)
	return f.denied[e.Client]
}

func (f *fakeChecker) Rules() *limiter.Ruleset { return f.rules }

// recorder keeps what the middleware publishes.
type recorder struct {
	mu     sync.Mutex
	events []event.Event
}

func (r *recorder) PublishTimed(e *event.Event, latency time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if latency < 0 {
		panic("negative latency")
	}
	r.events = append(r.events, *e)
	return true
}

func (r *recorder) all() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.events...)
}

var now = time.UnixMilli(1_767_225_600_000)

func newServer(t *testing.T, fc *fakeChecker, rec *recorder, mutate func(*inline.MiddlewareOptions)) http.Handler {
	t.Helper()
	rs, err := limiter.NewRuleset([]limiter.Rule{{Name: "per-client-minute", Match: limiter.Match{Service: "stocks"},
		Key: []limiter.Field{limiter.FieldClient}, Limit: 100, Window: time.Minute, Action: limiter.ActionDeny}})
	require.NoError(t, err)
	fc.rules = rs
	opts := inline.MiddlewareOptions{Service: "stocks", Checker: fc, Publisher: rec, SkipPaths: []string{"/healthz"},
		Clock: limiter.FixedClock(now)}
	if mutate != nil {
		mutate(&opts)
	}
	mw, err := inline.NewMiddleware(opts)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stocks/{symbol}/history", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"symbol":"` + r.PathValue("symbol") + `"}`))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	return mw.Handler(mux)
}

func do(h http.Handler, path string, hdr map[string]string, remote string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if remote != "" {
		req.RemoteAddr = remote
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestMiddleware_refusesDeniedClients(t *testing.T) {
	fc := &fakeChecker{denied: map[string]inline.Result{
		"acme": {Denied: true, Until: now.Add(41250 * time.Millisecond), Key: "client=acme", Rule: "per-client-minute", Source: inline.SourceLocal},
	}}
	rec := &recorder{}
	h := newServer(t, fc, rec, nil)

	w := do(h, "/stocks/AAPL/history", map[string]string{"X-API-Key": "acme"}, "192.0.2.1:5555")
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	require.Equal(t, "42", w.Header().Get("Retry-After"), "rounded up")
	require.Equal(t, `"per-client-minute";q=100;w=60`, w.Header().Get("RateLimit-Policy"))
	require.Equal(t, `"per-client-minute";r=0;t=42`, w.Header().Get("RateLimit"))
	require.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	var p inline.Problem
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
	require.Equal(t, inline.Problem{
		Type: inline.ProblemQuotaExceeded, Title: "Request cannot be satisfied as assigned quota has been exceeded",
		Status: 429, Detail: "quota of 100 requests per 60s used up; retry in 42s",
		ViolatedPolicies: []string{"per-client-minute"}, RetryAfter: 42,
	}, p)

	w = do(h, "/stocks/AAPL/history", map[string]string{"X-API-Key": "calm"}, "192.0.2.1:5555")
	require.Equal(t, http.StatusOK, w.Code)
	require.JSONEq(t, `{"symbol":"AAPL"}`, w.Body.String())
	require.Empty(t, w.Header().Get("RateLimit"))

	evs := rec.all()
	require.Len(t, evs, 2)
	require.Equal(t, event.Event{Client: "acme", TS: now.UnixMilli(), Service: "stocks", Route: "GET /stocks/{symbol}/history",
		Method: "GET", IP: "192.0.2.1", Status: 429, Weight: 1, Refused: true}, evs[0])
	require.Equal(t, event.Event{Client: "calm", TS: now.UnixMilli(), Service: "stocks", Route: "GET /stocks/{symbol}/history",
		Method: "GET", IP: "192.0.2.1", Status: 200, Weight: 1}, evs[1])
	require.Equal(t, "GET /stocks/{symbol}/history", fc.seen[0].Route, "the route is known before the check")
}

func TestMiddleware_manualBlockAndPolicy(t *testing.T) {
	fc := &fakeChecker{denied: map[string]inline.Result{
		"blocked": {Denied: true, Until: now.Add(time.Hour), Key: "client=blocked", Manual: true, Source: inline.SourceLocal},
		"unknown": {Denied: true, Until: now.Add(time.Second), Source: inline.SourcePolicy},
		"soon":    {Denied: true, Until: now.Add(10 * time.Millisecond), Key: "client=soon", Rule: "gone-rule", Source: inline.SourceRedis},
	}}
	h := newServer(t, fc, &recorder{}, nil)

	w := do(h, "/stocks/A/history", map[string]string{"X-API-Key": "blocked"}, "")
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	require.Equal(t, "3600", w.Header().Get("Retry-After"))
	require.Equal(t, `"manual-block";r=0;t=3600`, w.Header().Get("RateLimit"))
	require.Empty(t, w.Header().Get("RateLimit-Policy"), "a manual block has no quota")

	w = do(h, "/stocks/A/history", map[string]string{"X-API-Key": "unknown"}, "")
	require.Equal(t, http.StatusServiceUnavailable, w.Code, "fail-closed: the client exceeded nothing")
	require.Equal(t, "1", w.Header().Get("Retry-After"))
	require.Empty(t, w.Header().Get("RateLimit"))
	require.Contains(t, w.Body.String(), inline.ProblemReducedCapacity)

	w = do(h, "/stocks/A/history", map[string]string{"X-API-Key": "soon"}, "")
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	require.Equal(t, "1", w.Header().Get("Retry-After"), "never less than one second")
	require.Equal(t, `"gone-rule";r=0;t=1`, w.Header().Get("RateLimit"))
	require.Empty(t, w.Header().Get("RateLimit-Policy"), "unknown rule: no policy")
}

func TestMiddleware_skipsConfiguredPaths(t *testing.T) {
	fc := &fakeChecker{denied: map[string]inline.Result{"acme": {Denied: true, Until: now.Add(time.Minute), Source: inline.SourceLocal}}}
	rec := &recorder{}
	h := newServer(t, fc, rec, nil)
	w := do(h, "/healthz", map[string]string{"X-API-Key": "acme"}, "")
	require.Equal(t, http.StatusNoContent, w.Code, "health checks pass even for a denied client")
	require.Empty(t, rec.all())
	require.Empty(t, fc.seen)
}

func TestMiddleware_clientIdentity(t *testing.T) {
	trusted, err := inline.ParsePrefixes("10.0.0.0/8", "2001:db8::1")
	require.NoError(t, err)
	fc := &fakeChecker{}
	rec := &recorder{}
	h := newServer(t, fc, rec, func(o *inline.MiddlewareOptions) {
		o.TrustedProxies = trusted
		o.BearerSubject = func(tok string) (string, bool) { return inline.UnverifiedSubject(tok) }
	})
	cases := []struct {
		name, remote, xff, apiKey, auth string
		client, ip                      string
	}{
		{name: "peer address", remote: "192.0.2.7:1234", client: "192.0.2.7", ip: "192.0.2.7"},
		{name: "spoofed XFF from an untrusted peer is ignored", remote: "192.0.2.7:1234", xff: "203.0.113.9", client: "192.0.2.7", ip: "192.0.2.7"},
		{name: "trusted proxy", remote: "10.1.2.3:80", xff: "203.0.113.9", client: "203.0.113.9", ip: "203.0.113.9"},
		{name: "client-chosen head of XFF is ignored", remote: "10.1.2.3:80", xff: "198.51.100.66, 203.0.113.9, 10.9.9.9", client: "203.0.113.9", ip: "203.0.113.9"},
		{name: "all hops trusted", remote: "10.1.2.3:80", xff: "10.4.4.4", client: "10.4.4.4", ip: "10.4.4.4"},
		{name: "garbage stops at the last trusted hop", remote: "10.1.2.3:80", xff: "203.0.113.9, nonsense", client: "10.1.2.3", ip: "10.1.2.3"},
		{name: "ipv6 trusted proxy", remote: "[2001:db8::1]:443", xff: "2001:db8::77", client: "2001:db8::77", ip: "2001:db8::77"},
		{name: "ipv4-mapped peer", remote: "[::ffff:192.0.2.8]:1", client: "192.0.2.8", ip: "192.0.2.8"},
		{name: "api key", remote: "192.0.2.7:1", apiKey: "key-1", client: "key-1", ip: "192.0.2.7"},
		{name: "bearer subject", remote: "192.0.2.7:1", auth: "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyLTQyIn0.", client: "user-42", ip: "192.0.2.7"},
		{name: "api key wins over bearer", remote: "192.0.2.7:1", apiKey: "key-2", auth: "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyLTQyIn0.", client: "key-2", ip: "192.0.2.7"},
		{name: "bad bearer falls back to ip", remote: "192.0.2.7:1", auth: "Bearer x.y.z", client: "192.0.2.7", ip: "192.0.2.7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.xff != "" {
				hdr["X-Forwarded-For"] = tc.xff
			}
			if tc.apiKey != "" {
				hdr["X-API-Key"] = tc.apiKey
			}
			if tc.auth != "" {
				hdr["Authorization"] = tc.auth
			}
			before := len(rec.all())
			require.Equal(t, http.StatusOK, do(h, "/stocks/A/history", hdr, tc.remote).Code)
			ev := rec.all()[before]
			require.Equal(t, tc.client, ev.Client)
			require.Equal(t, tc.ip, ev.IP)
		})
	}
}

func TestMiddleware_longClientIsHashed(t *testing.T) {
	rec := &recorder{}
	h := newServer(t, &fakeChecker{}, rec, nil)
	do(h, "/stocks/A/history", map[string]string{"X-API-Key": strings.Repeat("a", 2000)}, "")
	ev := rec.all()[0]
	require.Len(t, ev.Client, len("sha256:")+32)
	require.NoError(t, ev.Validate(event.Limits{}), "the daemon accepts it")
}

func TestMiddleware_statusAndPanics(t *testing.T) {
	rec := &recorder{}
	h := newServer(t, &fakeChecker{}, rec, nil)
	require.Equal(t, http.StatusNotFound, do(h, "/nowhere", nil, "").Code)
	require.Panics(t, func() { do(h, "/boom", nil, "") })
	evs := rec.all()
	require.Len(t, evs, 2)
	require.Equal(t, 404, evs[0].Status)
	require.Empty(t, evs[0].Route, "an unmatched path is not a route: its values would be unbounded")
	require.Equal(t, 500, evs[1].Status, "a panic is reported as a 500")
	require.Equal(t, "GET /boom", evs[1].Route)
}

func TestParsePrefixes_refusesGarbage(t *testing.T) {
	_, err := inline.ParsePrefixes("10.0.0.0/8", "nope")
	require.Error(t, err)
	p, err := inline.ParsePrefixes("192.0.2.7")
	require.NoError(t, err)
	require.Equal(t, []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32")}, p)
}

func TestNewMiddleware_validates(t *testing.T) {
	_, err := inline.NewMiddleware(inline.MiddlewareOptions{Service: "bad service", Publisher: &recorder{}})
	require.ErrorContains(t, err, "service")
	_, err = inline.NewMiddleware(inline.MiddlewareOptions{Service: "stocks"})
	require.ErrorContains(t, err, "checker, a publisher")
}
