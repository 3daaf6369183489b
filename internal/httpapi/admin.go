package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ratemon/ratemon/limiter"
)

// Publisher sends flag changes to inline checkers (the decisions subject).
type Publisher interface {
	PublishDecisions(ctx context.Context, ds []limiter.Decision) error
}

// Admin wires the endpoints that read and change manual state: blocks,
// the allow-list, overrides, top keys and shadow listings.
type Admin struct {
	Store     *limiter.Store
	Publisher Publisher          // optional; without it changes reach checkers through Redis only
	Token     string             // bearer token of the mutating endpoints; empty disables them
	Shards    int                // work shards, for the top sets
	Tiers     map[string]float64 // tier name -> factor
}

func (a *API) routeAdmin() {
	if a.opts.Admin == nil || a.opts.Admin.Store == nil {
		return
	}
	a.mux.HandleFunc("GET /v1/top", a.top)
	a.mux.HandleFunc("GET /v1/blocks", a.listEntries(limiter.OpBlock))
	a.mux.HandleFunc("GET /v1/allows", a.listEntries(limiter.OpAllow))
	a.mux.HandleFunc("GET /v1/denies", a.listFlags(limiter.FlagDeny))
	a.mux.HandleFunc("GET /v1/shadow", a.shadow)
	a.mux.HandleFunc("GET /v1/overrides", a.listOverrides)
	a.mux.HandleFunc("POST /v1/blocks", a.guard(a.putEntry(limiter.OpBlock)))
	a.mux.HandleFunc("POST /v1/allows", a.guard(a.putEntry(limiter.OpAllow)))
	a.mux.HandleFunc("DELETE /v1/blocks/{key...}", a.guard(a.deleteEntry(limiter.OpUnblock)))
	a.mux.HandleFunc("DELETE /v1/allows/{key...}", a.guard(a.deleteEntry(limiter.OpUnallow)))
	a.mux.HandleFunc("PUT /v1/overrides", a.guard(a.putOverride))
	a.mux.HandleFunc("DELETE /v1/overrides/{key...}", a.guard(a.deleteOverride))
}

// guard lets a request through only with the admin bearer token, compared
// in constant time.
func (a *API) guard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := a.opts.Admin.Token
		if token == "" {
			writeError(w, http.StatusForbidden, "the admin API is disabled: set http.admin_token (RATEMON_HTTP_ADMIN_TOKEN)")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ratemon"`)
			writeError(w, http.StatusUnauthorized, "a valid bearer token is required")
			return
		}
		h(w, r)
	}
}

// publish sends decisions and reports (not fails on) a NATS problem: the
// flag in Redis is already right, and checkers fall back to it.
func (a *API) publish(ctx context.Context, ds []limiter.Decision) {
	if len(ds) == 0 || a.opts.Admin.Publisher == nil {
		return
	}
	if err := a.opts.Admin.Publisher.PublishDecisions(ctx, ds); err != nil {
		a.log.Warn("publish decisions", "err", err)
	}
}

// entryRequest is the body of POST /v1/blocks and /v1/allows.
type entryRequest struct {
	Key    string `json:"key"`
	For    string `json:"for"` // like "1h" or "30d"
	Reason string `json:"reason"`
	Author string `json:"author"`
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return false
	}
	return true
}

func (a *API) putEntry(op limiter.Op) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req entryRequest
		if !decodeBody(w, r, &req) {
			return
		}
		key, err := limiter.ParseKey(req.Key)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		d, err := limiter.ParseDuration(req.For)
		if err != nil {
			writeError(w, http.StatusBadRequest, "for: "+err.Error())
			return
		}
		if req.Author == "" {
			req.Author = "api"
		}
		e, dec, err := a.opts.Admin.Store.Manual(r.Context(), limiter.ManualRequest{Op: op, Key: key, Author: req.Author, Reason: req.Reason, For: d})
		if a.manualFailed(w, err) {
			return
		}
		if dec != nil {
			a.publish(r.Context(), []limiter.Decision{*dec})
		}
		writeJSON(w, http.StatusOK, e)
	}
}

func (a *API) deleteEntry(op limiter.Op) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, err := limiter.ParseKey(r.PathValue("key"))
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		_, dec, err := a.opts.Admin.Store.Manual(r.Context(), limiter.ManualRequest{Op: op, Key: key})
		if a.manualFailed(w, err) {
			return
		}
		if dec != nil {
			a.publish(r.Context(), []limiter.Decision{*dec})
		}
		writeJSON(w, http.StatusOK, map[string]any{"key": key, "removed": true})
	}
}

// manualFailed answers a failed manual operation: a 400 for a request the
// store refused, a 503 for Redis trouble.
func (a *API) manualFailed(w http.ResponseWriter, err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, limiter.ErrInvalid) {
		writeError(w, http.StatusBadRequest, err.Error())
		return true
	}
	a.log.Warn("admin operation", "err", err)
	writeError(w, http.StatusServiceUnavailable, "redis unavailable: "+err.Error())
	return true
}

func (a *API) listEntries(kind limiter.Op) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		es, err := a.opts.Admin.Store.Entries(r.Context(), kind)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, nonNil(es))
	}
}

func (a *API) listFlags(kind limiter.FlagKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fs, err := a.opts.Admin.Store.Flags(r.Context(), kind)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, nonNil(fs))
	}
}

func (a *API) shadow(w http.ResponseWriter, r *http.Request) {
	es, err := a.opts.Admin.Store.Shadowed(r.Context(), a.opts.Rules())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, nonNil(es))
}

// top answers GET /v1/top?rule=R&k=N: the busiest keys of one rule, or of
// every rule when rule is absent.
func (a *API) top(w http.ResponseWriter, r *http.Request) {
	k := 10
	if v := r.URL.Query().Get("k"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "k: want an integer between 1 and 1000, got "+strconvQuote(v))
			return
		}
		k = n
	}
	rs := a.opts.Rules()
	names := []string{r.URL.Query().Get("rule")}
	if names[0] == "" {
		names = names[:0]
		for _, ru := range rs.Rules() {
			names = append(names, ru.Name)
		}
	} else if _, ok := rs.Rule(names[0]); !ok {
		writeError(w, http.StatusBadRequest, "rule: no rule "+strconvQuote(names[0]))
		return
	}
	out := map[string][]limiter.TopEntry{}
	for _, n := range names {
		es, err := a.opts.Admin.Store.Top(r.Context(), rs, n, k, a.opts.Admin.Shards)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		out[n] = nonNil(es)
	}
	writeJSON(w, http.StatusOK, out)
}

// overrideRequest is the body of PUT /v1/overrides.
type overrideRequest struct {
	Key    string  `json:"key"`
	Rule   string  `json:"rule"`
	Limit  int64   `json:"limit"`
	Factor float64 `json:"factor"`
	Tier   string  `json:"tier"`
	For    string  `json:"for"` // optional; empty: until removed
}

func (a *API) putOverride(w http.ResponseWriter, r *http.Request) {
	var req overrideRequest
	if !decodeBody(w, r, &req) {
		return
	}
	o, d, err := OverrideFrom(req.Key, req.Rule, req.Limit, req.Factor, req.Tier, req.For, a.opts.Admin.Tiers)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ds, err := a.opts.Admin.Store.SetOverride(r.Context(), a.opts.Rules(), o, d)
	if a.manualFailed(w, err) {
		return
	}
	a.publish(r.Context(), ds)
	writeJSON(w, http.StatusOK, map[string]any{"override": o, "decisions": nonNil(ds)})
}

func (a *API) deleteOverride(w http.ResponseWriter, r *http.Request) {
	key, err := limiter.ParseKey(r.PathValue("key"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ds, err := a.opts.Admin.Store.ClearOverride(r.Context(), a.opts.Rules(), key, r.URL.Query().Get("rule"))
	if a.manualFailed(w, err) {
		return
	}
	a.publish(r.Context(), ds)
	writeJSON(w, http.StatusOK, map[string]any{"key": key, "removed": true, "decisions": nonNil(ds)})
}

func (a *API) listOverrides(w http.ResponseWriter, r *http.Request) {
	os, err := a.opts.Admin.Store.Overrides(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, nonNil(os))
}

// OverrideFrom builds an override from its request fields, as the HTTP API
// and the command line take them: a limit, a factor or a tier name; rule
// defaults to every rule ("*").
func OverrideFrom(key, rule string, limit int64, factor float64, tier, forText string, tiers map[string]float64) (limiter.Override, time.Duration, error) {
	k, err := limiter.ParseKey(key)
	if err != nil {
		return limiter.Override{}, 0, err
	}
	if rule == "" {
		rule = limiter.AllRules
	}
	if tier != "" {
		f, ok := tiers[tier]
		if !ok {
			return limiter.Override{}, 0, fmt.Errorf("tier: no tier %q in the config", tier)
		}
		if limit != 0 || factor != 0 {
			return limiter.Override{}, 0, errors.New("give a tier, a limit or a factor, only one")
		}
		factor = f
	}
	var d time.Duration
	if forText != "" {
		if d, err = limiter.ParseDuration(forText); err != nil {
			return limiter.Override{}, 0, fmt.Errorf("for: %w", err)
		}
	}
	return limiter.Override{Key: k, Rule: rule, Limit: limit, Factor: factor}, d, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
