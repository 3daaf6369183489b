package chaos

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"
)

// Names of the load scenarios in Options.Scenarios and the report. Long
// mode runs both after the faults; short mode (CI) runs neither unless
// named: the soak takes ten minutes, and the backlog scenario keeps both
// cores busy for one (short) or two (long).
const (
	BacklogName = "backlog"
	SoakName    = "soak"
)

// Names lists the scenarios in the order they run: the faults, then the
// backlog and the soak.
func Names() []string {
	var out []string
	for _, sc := range scenarios(planFor(Short)) {
		out = append(out, sc.name)
	}
	return append(out, BacklogName, SoakName)
}

// Report is the outcome of a checker run.
type Report struct {
	Mode    Mode          `json:"mode"`
	Date    string        `json:"date"`
	NProc   int           `json:"nproc"`
	Results []Result      `json:"results"`
	Loads   []*LoadResult `json:"loads,omitempty"` // the backlog scenario and the soak
	Dir     string        `json:"dir,omitempty"`   // where the logs are, when kept
}

// Pass reports whether every scenario passed.
func (r *Report) Pass() bool {
	for _, res := range r.Results {
		if !res.Pass {
			return false
		}
	}
	for _, l := range r.Loads {
		if !l.Pass {
			return false
		}
	}
	return true
}

// Run runs the selected scenarios one after the other, each on its own
// servers, and returns their judgement. An error means the checker could
// not run (a server did not start, ctx ended); failed checks are in the
// report.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.setDefaults()
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "ratemon-chaos-")
		if err != nil {
			return nil, fmt.Errorf("chaos: temporary directory: %w", err)
		}
		o.Dir = dir
		if !o.Keep {
			defer os.RemoveAll(dir)
		}
	}
	rep := &Report{Mode: o.Mode, Date: time.Now().UTC().Format(time.RFC3339), NProc: runtime.NumCPU()}
	if o.Keep {
		rep.Dir = o.Dir
	}
	want := func(name string) bool { return len(o.Scenarios) == 0 || slices.Contains(o.Scenarios, name) }
	wantLoad := func(name string) bool {
		return (len(o.Scenarios) == 0 && o.Mode == Long) || slices.Contains(o.Scenarios, name)
	}
	for _, sc := range scenarios(planFor(o.Mode)) {
		if !want(sc.name) {
			continue
		}
		o.Logger.Info("scenario", "scenario", sc.name, "fault", sc.fault)
		res, err := runScenario(ctx, &o, sc)
		if err != nil {
			return rep, fmt.Errorf("chaos: %s: %w", sc.name, err)
		}
		o.Logger.Info("scenario done", "scenario", sc.name, "pass", res.Pass, "recovery", res.Recovery.String())
		rep.Results = append(rep.Results, res)
	}
	for _, l := range []struct {
		name string
		run  func(context.Context, *Options) (*LoadResult, error)
	}{{BacklogName, runBacklog}, {SoakName, runSoak}} {
		if !wantLoad(l.name) {
			continue
		}
		o.Logger.Info("scenario", "scenario", l.name)
		res, err := l.run(ctx, &o)
		if err != nil {
			return rep, fmt.Errorf("chaos: %s: %w", l.name, err)
		}
		o.Logger.Info("scenario done", "scenario", l.name, "pass", res.Pass)
		rep.Loads = append(rep.Loads, res)
	}
	return rep, nil
}
