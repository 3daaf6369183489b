package alerting

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/limiter"
)

// ViewOptions wires a View.
type ViewOptions struct {
	Redis        redis.UniversalClient // required
	Keys         keyspace.Redis        // required
	LinkTemplate string                // alerting.link_template
}

// View reads the active alerts from Redis. It needs no rules and no NATS,
// so the command line can use it as well as the daemon.
type View struct {
	rdb  redis.UniversalClient
	keys keyspace.Redis
	tmpl *template.Template // nil without a link template
}

// NewView validates the options.
func NewView(opts ViewOptions) (*View, error) {
	if opts.Redis == nil || opts.Keys.Prefix() == "" {
		return nil, errors.New("alert view: redis client and key namer are required")
	}
	t, err := parseLink(opts.LinkTemplate)
	if err != nil {
		return nil, fmt.Errorf("alerting.link_template: %w", err)
	}
	return &View{rdb: opts.Redis, keys: opts.Keys, tmpl: t}, nil
}

// viewFields are the state fields Active reads.
var viewFields = []string{"s", "seq", "first", "at", "cnt", "lim", "peak", "until", "act", "sev", "win", "warn", "svc", "rn"}

// Active returns the alerts that are near or exceeded now, exceeded first,
// then oldest first. At is when each entered its state; ID is its last
// notification.
func (v *View) Active(ctx context.Context) ([]Alert, error) {
	members, err := v.rdb.ZRange(ctx, v.keys.AlertIndex(), 0, maxActiveSeen-1).Result()
	if err != nil {
		return nil, fmt.Errorf("read alert index: %w", err)
	}
	type item struct {
		id  alertID
		cmd *redis.SliceCmd
	}
	items := make([]item, 0, len(members))
	pipe := v.rdb.Pipeline()
	for _, m := range members {
		rule, key, ok := keyspace.ParseAlertMember(m)
		if !ok {
			continue
		}
		items = append(items, item{alertID{rule, limiter.LimitKey(key)}, pipe.HMGet(ctx, v.keys.AlertState(key, rule), viewFields...)})
	}
	if len(items) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("read alerts: %w", err)
		}
	}
	out := []Alert{}
	for _, it := range items {
		f := map[string]string{}
		for i, val := range it.cmd.Val() {
			s, _ := val.(string)
			f[viewFields[i]] = s
		}
		st := State(f["s"])
		if st != StateNear && st != StateExceeded {
			continue
		}
		num := func(k string) int64 { n, _ := strconv.ParseInt(f[k], 10, 64); return n }
		a := Alert{
			ID: it.id.rule + ":" + string(it.id.key) + ":" + f["seq"], seq: num("seq"),
			State: st, Repeat: int(num("rn")), Rule: it.id.rule, Key: it.id.key, Service: f["svc"],
			Action: limiter.Action(f["act"]), Severity: limiter.Severity(f["sev"]),
			Count: num("cnt"), Peak: num("peak"), Limit: num("lim"),
			Window: Duration(time.Duration(num("win")) * time.Millisecond),
			Since:  time.UnixMilli(num("first")).UTC(), At: time.UnixMilli(num("at")).UTC(),
		}
		a.WarnAt, _ = strconv.ParseFloat(f["warn"], 64)
		if st == StateNear {
			a.Severity = limiter.SeverityWarning
		}
		a.Flag = flagOf(v.keys, a.Action, a.Key, num("until"))
		a.Link = v.link(&a)
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y Alert) int {
		if x.State != y.State {
			return cmp.Compare(stateRank(y.State), stateRank(x.State))
		}
		return cmp.Or(x.Since.Compare(y.Since), cmp.Compare(x.Rule, y.Rule), cmp.Compare(x.Key, y.Key))
	})
	return out, nil
}

func stateRank(s State) int {
	if s == StateExceeded {
		return 1
	}
	return 0
}

// parseLink parses a link template; an empty one gives nil.
func parseLink(s string) (*template.Template, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	t, err := template.New("link").Option("missingkey=error").Parse(s)
	if err != nil {
		return nil, fmt.Errorf("bad template: %w", err)
	}
	if err := t.Execute(&bytes.Buffer{}, &Alert{}); err != nil {
		return nil, fmt.Errorf("bad template: %w", err)
	}
	return t, nil
}

// link renders the link of a; "" without a template or on error.
func (v *View) link(a *Alert) string {
	if v.tmpl == nil {
		return ""
	}
	var b bytes.Buffer
	if err := v.tmpl.Execute(&b, a); err != nil {
		return ""
	}
	return b.String()
}
