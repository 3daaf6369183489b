package inline

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// maxClientBytes bounds the client id the middleware reports. A longer
// value (a huge API key header, say) is replaced by a hash, so that it is
// still counted instead of being refused by the daemon as field_too_long.
const maxClientBytes = 128

// ClientIP returns the address of the client that sent r. It is the peer
// address, unless the peer is one of the trusted proxies: then it is the
// right-most address of X-Forwarded-For that is not a trusted proxy. So a
// client cannot choose its address by sending its own X-Forwarded-For: only
// what trusted proxies appended is believed. An entry that is not an
// address stops the walk at the last trusted hop.
func ClientIP(r *http.Request, trusted []netip.Prefix) string {
	peer, ok := parseAddr(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	hop := peer
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		list := values[i]
		for list != "" {
			var part string
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				part, list = list[j+1:], list[:j]
			} else {
				part, list = list, ""
			}
			a, ok := parseAddr(strings.TrimSpace(part))
			if !ok {
				return hop.String()
			}
			if !isTrusted(a, trusted) {
				return a.String()
			}
			hop = a
		}
	}
	return hop.String()
}

// parseAddr reads "ip", "ip:port" or "[ip]:port", without a zone, with
// IPv4-mapped IPv6 addresses turned into IPv4.
func parseAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParsePrefixes parses trusted proxy addresses or networks, such as
// "10.0.0.0/8" or "192.0.2.7".
func ParsePrefixes(list ...string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, err
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header.
func BearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	tok := strings.TrimSpace(h[7:])
	return tok, tok != ""
}

// UnverifiedSubject returns the "sub" claim of a JWT without checking its
// signature. Use it as MiddlewareOptions.BearerSubject only when something
// in front of this server (a gateway) has verified the token already:
// otherwise anyone can write any subject into a token and have requests
// counted against another user, who then gets denied.
func UnverifiedSubject(token string) (string, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", false
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Sub == "" {
		return "", false
	}
	return claims.Sub, true
}

// boundClient returns v, or "sha256:<hex>" of v when v is longer than
// maxClientBytes.
func boundClient(v string) string {
	if len(v) <= maxClientBytes {
		return v
	}
	sum := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(sum[:16])
}
