package keyspace

import (
	"errors"
	"fmt"
	"strings"
)

// Subjects names the NATS subjects under one prefix.
type Subjects struct {
	prefix string
}

// NewSubjects returns the subject namer for prefix, which must be one or more
// valid NATS tokens separated by dots, without wildcards.
func NewSubjects(prefix string) (Subjects, error) {
	if err := ValidateSubjectPrefix(prefix); err != nil {
		return Subjects{}, err
	}
	return Subjects{prefix: prefix}, nil
}

// ValidateSubjectPrefix checks a subject prefix.
func ValidateSubjectPrefix(prefix string) error {
	if prefix == "" {
		return errors.New("must not be empty")
	}
	if prefix[0] == '.' || prefix[len(prefix)-1] == '.' {
		return fmt.Errorf("must not start or end with a dot, got %q", prefix)
	}
	for i := 0; i < len(prefix); i++ {
		b := prefix[i]
		if b == '.' && i > 0 && prefix[i-1] == '.' {
			return fmt.Errorf("must not contain an empty token, got %q", prefix)
		}
		if b == '*' || b == '>' || b <= ' ' || b == 0x7f {
			return fmt.Errorf("must not contain %q", string(b))
		}
	}
	return nil
}

// ValidateService checks that a service name can be a subject token.
func ValidateService(service string) error {
	if service == "" {
		return errors.New("must not be empty")
	}
	for i := 0; i < len(service); i++ {
		b := service[i]
		ok := b == '-' || b == '_' || (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')
		if !ok {
			return fmt.Errorf("must hold only letters, digits, '-' and '_', got %q", service)
		}
	}
	return nil
}

// Prefix returns the configured prefix.
func (s Subjects) Prefix() string { return s.prefix }

// Events is the subject a service publishes its events on.
func (s Subjects) Events(service string) string { return s.prefix + ".events." + service }

// EventsAll is the wildcard covering every service's events.
func (s Subjects) EventsAll() string { return s.prefix + ".events.>" }

// EventsPrefix is the part of an events subject before the service token.
func (s Subjects) EventsPrefix() string { return s.prefix + ".events." }

// ServiceOf returns the service token of an events subject.
func (s Subjects) ServiceOf(subject string) string {
	return strings.TrimPrefix(subject, s.EventsPrefix())
}

// Decisions is the subject flag changes are published on.
func (s Subjects) Decisions() string { return s.prefix + ".decisions" }

// Alerts is the subject alerts are published on.
func (s Subjects) Alerts() string { return s.prefix + ".alerts" }

// DeadLetter is the subject rejected input is published on.
func (s Subjects) DeadLetter() string { return s.prefix + ".deadletter" }
