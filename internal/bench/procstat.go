package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat. Linux fixes it
// at 100 for user space on every architecture Go supports (procfs assumes
// the same).
const userHZ = 100

// procStat is what /proc says about one process.
type procStat struct {
	cpu float64 // user + system CPU seconds
	rss int64   // resident set size, bytes
}

func readProc(pid int) (procStat, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, fmt.Errorf("read process stats: %w", err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStat{}, fmt.Errorf("read process status: %w", err)
	}
	return parseProc(stat, status)
}

// parseProc reads utime and stime (fields 14 and 15 of stat, counted after
// the command name, which may hold spaces) and VmRSS of status.
func parseProc(stat, status []byte) (procStat, error) {
	var ps procStat
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return ps, fmt.Errorf("parse /proc stat %q: no command name", truncate(stat))
	}
	f := bytes.Fields(stat[end+1:])
	if len(f) < 13 {
		return ps, fmt.Errorf("parse /proc stat %q: too few fields", truncate(stat))
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return ps, fmt.Errorf("parse /proc stat %q: bad cpu times", truncate(stat))
	}
	ps.cpu = float64(ut+st) / userHZ
	for line := range bytes.SplitSeq(status, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		fs := bytes.Fields(rest)
		if len(fs) == 0 {
			break
		}
		kb, err := strconv.ParseInt(string(fs[0]), 10, 64)
		if err != nil {
			return ps, fmt.Errorf("parse VmRSS %q: %w", rest, err)
		}
		ps.rss = kb << 10
		return ps, nil
	}
	return ps, fmt.Errorf("parse /proc status: no VmRSS")
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// ProcRSS is the resident set size of process pid, in bytes.
func ProcRSS(pid int) (int64, error) {
	ps, err := readProc(pid)
	return ps.rss, err
}

// procSum reads every pid and sums CPU and RSS; pids that are gone count 0.
func procSum(pids []int) procStat {
	var sum procStat
	for _, pid := range pids {
		if ps, err := readProc(pid); err == nil {
			sum.cpu += ps.cpu
			sum.rss += ps.rss
		}
	}
	return sum
}

// rssSampler samples the summed RSS of the replicas every interval, from
// start until stop, which sums them up.
type rssSampler struct {
	pids     []int
	stopOnce sync.Once
	stopc    chan struct{}
	done     chan struct{}

	mu  sync.Mutex // guards all
	all []int64    // every sample, in order
}

// rssFigures sums up the samples of a run: the first, the last, the
// largest, and the largest of each half of the samples (equal halves of
// the measured interval, as the samples are evenly spaced). Memory that
// grows with the work done, rather than settling at what the
// configuration bounds, shows as a second half above the first.
type rssFigures struct {
	first, last, peak int64
	half1, half2      int64
}

func summarizeRSS(all []int64) rssFigures {
	var f rssFigures
	if len(all) == 0 {
		return f
	}
	f.first, f.last = all[0], all[len(all)-1]
	mid := (len(all) + 1) / 2
	for i, v := range all {
		f.peak = max(f.peak, v)
		if i < mid {
			f.half1 = max(f.half1, v)
		} else {
			f.half2 = max(f.half2, v)
		}
	}
	if len(all) == 1 {
		f.half2 = f.half1
	}
	return f
}

func startRSS(pids []int, interval time.Duration) *rssSampler {
	s := &rssSampler{pids: pids, stopc: make(chan struct{}), done: make(chan struct{})}
	go s.loop(interval)
	return s
}

func (s *rssSampler) loop(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	s.sample()
	for {
		select {
		case <-s.stopc:
			s.sample()
			return
		case <-t.C:
			s.sample()
		}
	}
}

func (s *rssSampler) sample() {
	if len(s.pids) == 0 {
		return
	}
	rss := procSum(s.pids).rss
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = append(s.all, rss)
}

// stop takes a last sample and sums up the samples. It may be called
// again.
func (s *rssSampler) stop() rssFigures {
	s.stopOnce.Do(func() { close(s.stopc) })
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return summarizeRSS(s.all)
}
