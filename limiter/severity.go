package limiter

import "fmt"

// Severity tells how urgent the alerts of a rule are.
type Severity string

// Severities, from least to most urgent.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Validate checks that s is empty (the default) or a known severity.
func (s Severity) Validate() error {
	switch s {
	case "", SeverityInfo, SeverityWarning, SeverityCritical:
		return nil
	}
	return fmt.Errorf("must be one of info, warning, critical, got %q", string(s))
}
