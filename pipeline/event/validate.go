package event

import "strconv"

// Validate checks an already-built Event against the contract, in the order
// Decode checks a decoded one: client present and not too long, ts in range
// (0 is no timestamp), the other strings not too long, status and weight in
// range. It returns a *DecodeError, or nil. It does not check UTF-8;
// AppendJSON writes invalid bytes as U+FFFD.
func (e Event) Validate(lim Limits) error {
	lim = lim.normalized()
	if e.Client == "" {
		return &DecodeError{Reason: ReasonMissingClient, Detail: `client: required, got ""`}
	}
	if err := checkLen(fClient, e.Client, lim.MaxFieldBytes); err != nil {
		return err
	}
	if e.TS < 0 || e.TS > maxTS {
		return &DecodeError{Reason: ReasonBadTS, Detail: detailTSRange(strconv.FormatInt(e.TS, 10))}
	}
	for _, s := range [...]struct {
		f field
		v string
	}{{fService, e.Service}, {fRoute, e.Route}, {fMethod, e.Method}, {fIP, e.IP}, {fID, e.ID}} {
		if err := checkLen(s.f, s.v, lim.MaxFieldBytes); err != nil {
			return err
		}
	}
	if e.Status < 0 || e.Status > maxStatus {
		return &DecodeError{Reason: ReasonBadStatus, Detail: detailStatus(strconv.Itoa(e.Status))}
	}
	if e.Weight < 1 || e.Weight > maxWeight {
		return &DecodeError{Reason: ReasonBadWeight, Detail: detailWeight(strconv.FormatInt(e.Weight, 10))}
	}
	return nil
}

// checkLen returns a field_too_long error when v is longer than limit.
func checkLen(f field, v string, limit int) error {
	if len(v) > limit {
		return &DecodeError{Reason: ReasonFieldTooLong, Detail: detailTooLong(f.String(), len(v), limit)}
	}
	return nil
}
