package alerting

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Webhook headers (see docs/ALERTING.md).
const (
	HeaderDelivery  = "X-Ratemon-Delivery"  // same value on every attempt of one message
	HeaderTimestamp = "X-Ratemon-Timestamp" // Unix seconds of this attempt
	HeaderSignature = "X-Ratemon-Signature" // "v1=" + hex HMAC-SHA256(secret, timestamp + "." + body)
)

// WebhookBody is the JSON body a webhook sink posts.
type WebhookBody struct {
	Version  string  `json:"version"`  // "1"
	Receiver string  `json:"receiver"` // the sink's name
	Rule     string  `json:"rule"`     // the group: every alert has this rule...
	State    State   `json:"state"`    // ...and this state
	Alerts   []Alert `json:"alerts"`
}

// webhookSink posts the alerts as a WebhookBody, signed when it has a secret.
type webhookSink struct {
	name   string
	url    string
	secret Secret
	client *http.Client
}

// Send implements Sink.
func (s *webhookSink) Send(ctx context.Context, alerts ...Alert) (bool, error) {
	body, err := marshalJSON(WebhookBody{Version: "1", Receiver: s.name, Rule: alerts[0].Rule, State: alerts[0].State, Alerts: alerts})
	if err != nil {
		return false, fmt.Errorf("encode webhook body: %w", err)
	}
	h := http.Header{}
	h.Set(HeaderDelivery, deliveryID(alerts))
	if len(s.secret) > 0 {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, Sign(s.secret, ts, body))
	}
	return postJSON(ctx, s.client, s.url, h, body)
}

// Sign returns the signature header value of a webhook body sent at ts
// (Unix seconds, as in HeaderTimestamp): "v1=" followed by the hex
// HMAC-SHA256 of ts + "." + body under secret.
func Sign(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// deliveryID names one message: the hash of its alert ids, so every attempt
// (and a re-delivery by another replica) carries the same value.
func deliveryID(alerts []Alert) string {
	h := sha256.New()
	for _, a := range alerts {
		h.Write([]byte(a.ID))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// postJSON posts body and sorts the outcome: 2xx is success; 408, 429, 5xx
// and transport errors may be retried; any other status is permanent.
// Errors never show the URL, which may hold a token.
func postJSON(ctx context.Context, c *http.Client, u string, h http.Header, body []byte) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("build request: bad url")
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ratemon")
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return true, fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return false, nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return true, fmt.Errorf("post: status %d", code)
	default:
		return false, fmt.Errorf("post: status %d", code)
	}
}

// marshalJSON is json.Marshal without the escaping of <, > and & that is
// meant for HTML: links stay readable.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
