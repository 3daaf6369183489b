package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// step is one request of the demo and its answer.
type step struct {
	n          int
	status     int
	retryAfter string
	rateLimit  string
	policy     string
	body       string
}

// demo plays a client with its own API key: it requests the history every
// o.pace until it is refused, prints the refusal with its headers, then
// keeps asking every o.retryPace (the refused requests are reported as
// refused and not counted) until it is served again.
func demo(ctx context.Context, base string, o options, out io.Writer) error {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	key := "demo-" + hex.EncodeToString(rnd[:])
	fmt.Fprintf(out, "demo: API key %s requests GET /stocks/ACME/history every %v\n", key, o.pace)
	var first, last step
	refused := false
	for n := 1; ; n++ {
		s, err := get(ctx, base+"/stocks/ACME/history", key, n)
		if err != nil {
			return err
		}
		switch {
		case s.status == http.StatusOK && !refused:
			if first.n == 0 {
				first = s
			}
			last = s
		case s.status == http.StatusTooManyRequests && !refused:
			fmt.Fprintf(out, "demo: #%d-#%d  200 OK\n", first.n, last.n)
			fmt.Fprintf(out, "demo: #%d  429 Too Many Requests\n      Retry-After: %s\n      RateLimit: %s\n      RateLimit-Policy: %s\n      %s\n",
				s.n, s.retryAfter, s.rateLimit, s.policy, s.body)
			fmt.Fprintf(out, "demo: still asking every %v; refused requests are not counted, so the client recovers when its window frees up\n", o.retryPace)
			refused = true
		case s.status == http.StatusTooManyRequests:
			fmt.Fprintf(out, "demo: #%d  429  Retry-After: %s\n", s.n, s.retryAfter)
		case s.status == http.StatusOK:
			fmt.Fprintf(out, "demo: #%d  200 OK again: %s\n", s.n, s.body)
			return nil
		default:
			return fmt.Errorf("%w: #%d status %d: %s", errDemo, s.n, s.status, s.body)
		}
		pause := o.pace
		if refused {
			pause = o.retryPace
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

// get sends one request as the API key.
func get(ctx context.Context, url, key string, n int) (step, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return step{}, err
	}
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return step{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return step{}, err
	}
	return step{
		n: n, status: resp.StatusCode, body: strings.TrimSpace(string(body)),
		retryAfter: resp.Header.Get("Retry-After"), rateLimit: resp.Header.Get("RateLimit"), policy: resp.Header.Get("RateLimit-Policy"),
	}, nil
}
