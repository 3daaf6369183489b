package inline

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ratemon/ratemon/limiter"
)

// Problem types of refusals (RFC 9457), from
// draft-ietf-httpapi-ratelimit-headers-10, section 5.
const (
	ProblemQuotaExceeded   = "https://iana.org/assignments/http-problem-types#quota-exceeded"
	ProblemReducedCapacity = "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity"
)

// ManualPolicy is the policy name the RateLimit field gives to a manual
// block, which has no rule.
const ManualPolicy = "manual-block"

// Problem is the application/problem+json body of a refusal.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// ViolatedPolicies names the policies (rules) whose quota is used up,
	// the draft's extension member.
	ViolatedPolicies []string `json:"violated-policies,omitempty"`
	// RetryAfter repeats the Retry-After field, in seconds.
	RetryAfter int64 `json:"retry-after"`
}

// writeRefusal answers a refused request and returns the status written:
//
//   - denied by a flag: 429, Retry-After, RateLimit (r=0, t = seconds until
//     the flag ends), RateLimit-Policy when the rule is known (q = limit,
//     w = window in seconds), and a quota-exceeded problem;
//   - refused by the fail-closed policy: 503, Retry-After and a
//     temporary-reduced-capacity problem: ratemon could not tell, the
//     client did not exceed anything.
func writeRefusal(w http.ResponseWriter, res Result, rs *limiter.Ruleset, now time.Time) int {
	secs := ceilSeconds(res.RetryAfter(now))
	h := w.Header()
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	p := Problem{RetryAfter: secs}
	if res.Source == SourcePolicy {
		p.Type, p.Status = ProblemReducedCapacity, http.StatusServiceUnavailable
		p.Title = "Request cannot be satisfied due to temporary server capacity constraints"
		p.Detail = fmt.Sprintf("rate limits cannot be checked right now; retry in %ds", secs)
	} else {
		name := res.Rule
		if res.Manual || name == "" {
			name = ManualPolicy
		}
		p.Type, p.Status = ProblemQuotaExceeded, http.StatusTooManyRequests
		p.Title = "Request cannot be satisfied as assigned quota has been exceeded"
		p.ViolatedPolicies = []string{name}
		p.Detail = fmt.Sprintf("blocked; retry in %ds", secs)
		var rule *limiter.Rule
		if rs != nil && !res.Manual {
			rule, _ = rs.Rule(name)
		}
		if rule != nil {
			w := ceilSeconds(rule.Window)
			h.Set("RateLimit-Policy", sfString(name)+";q="+strconv.FormatInt(rule.Limit, 10)+";w="+strconv.FormatInt(w, 10))
			p.Detail = fmt.Sprintf("quota of %d requests per %ds used up; retry in %ds", rule.Limit, w, secs)
		}
		h.Set("RateLimit", sfString(name)+";r=0;t="+strconv.FormatInt(secs, 10))
	}
	body, _ := json.Marshal(p)
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
	return p.Status
}

// ceilSeconds rounds d up to whole seconds, at least 1.
func ceilSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// sfString writes s as a structured-field String (RFC 8941): quoted,
// with `"` and `\` escaped; characters outside printable ASCII, which a
// String cannot hold, become '?'.
func sfString(s string) string {
	var sb strings.Builder
	sb.Grow(len(s) + 2)
	sb.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			sb.WriteByte('\\')
			sb.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			sb.WriteByte('?')
		default:
			sb.WriteByte(c)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}
