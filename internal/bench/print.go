package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// WriteTable writes the report for people.
func (r *Report) WriteTable(w io.Writer) error {
	s, x := r.Setup, r.Result
	rate := "max"
	if s.Rate > 0 {
		rate = fmt.Sprintf("%g/s", s.Rate)
	}
	length := s.Duration
	if s.EventsPerRun > 0 {
		length = fmt.Sprintf("%d events", s.EventsPerRun)
	}
	dist := s.Dist
	if s.Dist == string(Zipf) {
		dist = fmt.Sprintf("zipf s=%g", s.ZipfS)
	}
	mode := "subprocess"
	if s.InProcess {
		mode = "in-process"
	}
	agg := "median of %d runs; false/missed denies: worst run"
	if s.Runs == 1 {
		agg = "%d run"
	}
	fmt.Fprintf(w, "ratemon bench  %s  nproc %d  redis %s  servers: %s  %s\n", s.Date, s.NProc, s.RedisVersion, s.Servers, s.GoVersion)
	abusive := fmt.Sprintf("%g abusive", s.Abusive)
	if s.AbuseRamp != "" {
		abusive += " (starting over the first " + s.AbuseRamp + ")"
	}
	fmt.Fprintf(w, "load: %d keys %s, %s, rate %s, %s, %d events/msg; rule %d per %dms; %d %s replica(s)%s; "+agg+"\n\n",
		s.Keys, dist, abusive, rate, length, s.PerMsg, s.Limit, s.WindowMS, s.Replicas, mode, backlogNote(s.Backlog), s.Runs)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tratemon\tseed exact\tseed approx\txadd ceiling\t")
	if s.References {
		fmt.Fprintf(tw, "events or decisions/s\t%s\t%s\t%s\t%s\t\n", num(x.EventsPerS), num(x.SeedExactPerS), num(x.SeedApproxPerS), num(x.XAddCeilingPerS))
		fmt.Fprintf(tw, "ratemon / reference\t\t%.2fx\t%.2fx\t%.2fx\t\n", x.RatioSeedExact, x.RatioSeedApprox, x.RatioXAdd)
		fmt.Fprintf(tw, "false denies\t%s\t%s\t%s (%.2f%%)\t\t\n", num(x.FalseDenies), num(x.SeedExactFalseDenies), num(x.SeedApproxFalseDenies), 100*x.SeedApproxFalseDenyRate)
		fmt.Fprintf(tw, "missed denies\t%s\t%s\t%s\t\t\n", num(x.MissedDenies), num(x.SeedExactMissedDenies), num(x.SeedApproxMissedDenies))
	} else {
		fmt.Fprintf(tw, "events or decisions/s\t%s\t-\t-\t-\t\n", num(x.EventsPerS))
		fmt.Fprintf(tw, "false denies\t%s\t-\t-\t\t\n", num(x.FalseDenies))
		fmt.Fprintf(tw, "missed denies\t%s\t-\t-\t\t\n", num(x.MissedDenies))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}

	fmt.Fprintf(w, "\nratemon: %s events in %s messages, drained %.2fs after the first publish (published at %s events/s)\n",
		num(x.Events), num(x.Messages), x.ElapsedS, num(x.PublishPerS))
	fmt.Fprintf(w, "detection lag: p50 %.1f ms, p99 %.1f ms, max %.1f ms over %s keys (%s tripped keys without a decision, %s denied keys never tripped)\n",
		x.LagP50MS, x.LagP99MS, x.LagMaxMS, num(x.LagKeys), num(x.LagMissing), num(x.ExtraDenyKeys))
	fmt.Fprintf(w, "flags after the run: %s in redis, %s in the model; %s borderline, %s with another end, %s model differences; %s kept past their until (by up to %s ms)\n",
		num(x.Flags), num(x.ModelDenies), num(x.BorderlineFlags), num(x.UntilMismatches), num(x.ModelMismatches), num(x.LateExpiries), num(x.FlagOverstayMS))
	if x.Flags == 0 && x.ModelDenies == 0 {
		fmt.Fprintln(w, "  (no flag was in force when the flags were read: only the counts were compared; a longer --window keeps flags alive past the drain)")
	}
	fmt.Fprintf(w, "redis: %.2f cpu s (%.2f us/event), keys %s B = %.1f B per in-window event (%s in window), used_memory %+.0f B\n",
		x.RedisCPUS, x.RedisCPUUSPerEvent, num(x.RedisKeyBytes), x.RedisBytesPerEvent, num(x.WindowEvents), x.RedisMemoryDelta)
	if s.InProcess {
		fmt.Fprintln(w, "daemon: in-process, CPU and RSS not measured (run without --inprocess)")
	} else {
		fmt.Fprintf(w, "daemon: %.2f cpu s (%.2f us/event), rss max %s (first sample %s, last %s; largest in the first half %s, in the second %s: %+.1f%%)\n",
			x.DaemonCPUS, x.DaemonCPUUSPerEvent, mib(x.DaemonRSSBytes), mib(x.DaemonRSSStartBytes), mib(x.DaemonRSSEndBytes),
			mib(x.DaemonRSSHalf1Bytes), mib(x.DaemonRSSHalf2Bytes), 100*x.DaemonRSSGrowth)
	}
	for _, run := range r.Runs {
		for _, m := range run.Samples {
			fmt.Fprintf(w, "difference (%s): %s\n", run.RedisPrefix, m)
		}
	}
	return nil
}

func backlogNote(b bool) string {
	if b {
		return ", backlog drained"
	}
	return ""
}

// num formats a figure with thousands separators, without decimals.
func num(f float64) string {
	neg := f < 0
	s := fmt.Sprintf("%.0f", f)
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func mib(f float64) string { return fmt.Sprintf("%.1f MiB", f/(1<<20)) }
