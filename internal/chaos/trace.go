package chaos

import (
	"fmt"
	"hash/fnv"
	"time"

	"github.com/ratemon/ratemon/internal/tracegen"
	"github.com/ratemon/ratemon/limiter"
)

// service is the service every scenario's events come from.
const service = "stocks"

// faultRules are the rules of the fault scenarios: two key shapes with
// deny rules (one with deny_for), a route-scoped rule and a shadow rule,
// with windows of one to five minutes so that the final comparison does
// not race the windows. scale multiplies the limits with the trace size.
func faultRules(scale int64) []limiter.Rule {
	rules := []limiter.Rule{
		{Name: "per-client", Key: []limiter.Field{limiter.FieldClient}, Limit: 150 * scale, Window: 2 * time.Minute},
		{Name: "login", Match: limiter.Match{Route: "POST /login"}, Key: []limiter.Field{limiter.FieldClient, limiter.FieldRoute},
			Limit: 25 * scale, Window: time.Minute},
		{Name: "ip-ban", Key: []limiter.Field{limiter.FieldIP}, Limit: 200 * scale, Window: time.Minute, DenyFor: 10 * time.Minute},
		{Name: "watch", Key: []limiter.Field{limiter.FieldClient}, Limit: 80 * scale, Window: 5 * time.Minute, Action: limiter.ActionShadow},
	}
	for i := range rules {
		rules[i].SetDefaults()
	}
	return rules
}

// trace is what one scenario publishes: the events, cut into NDJSON
// messages, and the reference model fed the same events.
type trace struct {
	now    int64 // Unix ms; no event is later
	events int
	msgs   []message
	model  *limiter.Model
}

// message is one NATS message of the trace; id is its Nats-Msg-Id.
type message struct {
	id   string
	data []byte
}

// newTrace generates about p.messages × p.perMsg events over the three
// minutes before now: a Zipf spread over 30 clients behind 10 addresses
// (the busiest are abusive), some out of order, late or sent twice, weights
// 1 or 2. Every event has a unique id, but half of them are published
// without it: an id de-duplicates a redelivered event by itself, and would
// hide a failure of the de-duplication by JetStream sequence.
func newTrace(rs *limiter.Ruleset, p plan, seed uint64, name string, now time.Time) *trace {
	evs := tracegen.Generate(tracegen.Options{
		Seed: seed, Now: now.UnixMilli(), Span: 3 * time.Minute, Events: p.messages * p.perMsg * 97 / 100,
		Clients: 30, Zipf: 1.3, IPs: 10, OutOfOrder: 0.2, Jitter: 2 * time.Second, Late: 0.02, Duplicates: 0.03,
		MaxWeight: 2, Services: []string{service},
		Routes: []string{"GET /stocks/{symbol}/history", "POST /login", "GET /stocks/{symbol}/quote"},
	})
	for i := range evs {
		h := fnv.New32a()
		_, _ = h.Write([]byte(evs[i].ID))
		if h.Sum32()%2 == 0 {
			evs[i].ID = "" // both copies of a duplicate alike
		}
	}
	tr := &trace{now: now.UnixMilli(), events: len(evs), model: limiter.NewModel(rs)}
	var hits []limiter.Hit
	for i := range evs {
		e := evs[i]
		hits = rs.Match(hits[:0], &e)
		for _, h := range hits {
			tr.model.Add(tr.now, h.Key, []limiter.Message{{Events: []limiter.Event{{TS: e.TS, Weight: e.Weight, Mask: h.Mask, ID: e.ID}}}})
		}
	}
	for i := 0; i < len(evs); i += p.perMsg {
		var buf []byte
		for _, e := range evs[i:min(i+p.perMsg, len(evs))] {
			buf = append(e.AppendJSON(buf), '\n')
		}
		tr.msgs = append(tr.msgs, message{id: fmt.Sprintf("%s-%d", name, len(tr.msgs)), data: buf})
	}
	return tr
}

// flagsAt is the model's deny and shadow flag ends for key k at time at
// (Unix ms); 0 where the model has no flag in force.
func (tr *trace) flagsAt(at int64, k limiter.LimitKey) (deny, shadow int64) {
	res := tr.model.Evaluate(at, k)
	if res.Deny.Until > at {
		deny = res.Deny.Until
	}
	if res.Shadow.Until > at {
		shadow = res.Shadow.Until
	}
	return deny, shadow
}

// subject is where the trace's messages are published.
func subject(e *env) string { return e.subjects.Events(service) }
