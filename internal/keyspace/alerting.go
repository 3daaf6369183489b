package keyspace

import "strconv"

// The alerting keys. The state of one alert and the record of each of its
// notifications carry the limit key's hash tag, so one script touches one
// cluster slot; the index, the outbox and the lease are single keys without a
// tag.
//
//	<prefix>:alert:{<limit key>}:<rule>        alert state (hash)
//	<prefix>:alertn:{<limit key>}:<rule>:<n>   notification n of that alert (hash)
//	<prefix>:alerts:active                     alerts to look at, by next check time (sorted set)
//	<prefix>:alerts:outbox                     notifications waiting for delivery (stream)
//	<prefix>:alerts:leader                     the replica that delivers notifications (string)

// AlertState is the hash holding the lifecycle of the alert of one rule for
// one limit key.
func (r Redis) AlertState(limitKey, rule string) string {
	return r.tagged("alert", limitKey, rule)
}

// AlertNotification is the hash holding notification seq of the alert of
// one rule for one limit key: what to send, and to which sinks it went.
func (r Redis) AlertNotification(limitKey, rule string, seq int64) string {
	return r.tagged("alertn", limitKey, rule) + ":" + strconv.FormatInt(seq, 10)
}

// AlertIndex is the sorted set of alerts that need looking at, scored by the
// Unix ms of their next check; members are AlertMember values.
func (r Redis) AlertIndex() string { return r.prefix + ":alerts:active" }

// AlertOutbox is the stream of notifications waiting to be delivered.
func (r Redis) AlertOutbox() string { return r.prefix + ":alerts:outbox" }

// AlertLeader is the lease naming the replica that delivers notifications.
func (r Redis) AlertLeader() string { return r.prefix + ":alerts:leader" }

// AlertMember is the member of AlertIndex for the alert of rule on limitKey:
// `<rule>:<limit key>`. Rule names hold no ':', so the first one separates.
func AlertMember(rule, limitKey string) string { return rule + ":" + limitKey }

// ParseAlertMember splits an AlertIndex member into rule and limit key.
func ParseAlertMember(m string) (rule, limitKey string, ok bool) {
	for i := 0; i < len(m); i++ {
		if m[i] == ':' {
			return m[:i], m[i+1:], i > 0 && i+1 < len(m)
		}
	}
	return "", "", false
}
