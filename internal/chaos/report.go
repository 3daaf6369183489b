package chaos

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

func verdict(pass bool) string {
	if pass {
		return "PASS"
	}
	return "FAIL"
}

// WriteTable writes one line per scenario, then the faults, the problems
// and the soak's figures.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ratemon fault checker, %s mode, %s, nproc %d\n\n", r.Mode, r.Date, r.NProc)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tRESULT\tEVENTS\tMESSAGES\tKEYS\tFLAGS\tOVER\tDECISIONS\tREDELIVERED\tRETRIES\tCATCH-UP\tRECOVERY\tTOOK")
	for _, res := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1fs\t%.1fs\t%.0fs\n", res.Name, verdict(res.Pass), res.Events,
			res.Messages, res.Keys, res.Flags, res.Over, res.Decided, res.Redelivered, res.Retries, res.CatchUp.Seconds(),
			res.Recovery.Seconds(), res.Took.Seconds())
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	for _, res := range r.Results {
		fmt.Fprintf(&b, "\n%s: %s\n", res.Name, res.Fault)
		for _, n := range res.Notes {
			fmt.Fprintf(&b, "  %s\n", n)
		}
		for _, p := range res.Problems {
			fmt.Fprintf(&b, "  FAIL %s\n", p)
		}
	}
	for _, s := range r.Loads {
		fmt.Fprintf(&b, "\n%s: %s: %s\n", s.Name, verdict(s.Pass), s.Load)
		if s.MaxRate > 0 {
			fmt.Fprintf(&b, "  maximum rate %.0f events/s; target %.0f events/s\n", s.MaxRate, s.Rate)
		}
		fmt.Fprintf(&b, "  published %d events in %v (%.0f/s); %d segments, %d (segment, client) counts compared; %d burst flags at the end\n",
			s.Events, s.Duration, s.Achieved, s.Segments, s.Checked, s.Flags)
		if s.WarmUp > 0 {
			for _, r := range []struct {
				name string
				s    Spread
			}{{"redis used_memory", s.Redis}, {"daemon RSS", s.RSS}} {
				fmt.Fprintf(&b, "  %s after the %v warm-up: %.1f to %.1f MiB; mean %.1f MiB over the first %v, %.1f MiB over the last (%+.1f%%)\n",
					r.name, s.WarmUp, mib(r.s.Min), mib(r.s.Max), r.s.First/(1<<20), r.s.Span, r.s.Last/(1<<20), 100*r.s.Drift)
			}
		}
		fmt.Fprintf(&b, "  largest backlog: %d messages; %d redelivered messages found already applied\n", s.MaxBacklog, s.Redelivered)
		for _, p := range s.Problems {
			fmt.Fprintf(&b, "  FAIL %s\n", p)
		}
	}
	if r.Dir != "" {
		fmt.Fprintf(&b, "\nlogs and configs: %s\n", r.Dir)
	}
	fmt.Fprintf(&b, "\n%s\n", verdict(r.Pass()))
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
