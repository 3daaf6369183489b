//go:build linux

package inline

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// rusageThread is RUSAGE_THREAD of getrusage(2) on Linux.
const rusageThread = 1

// cpuTimer measures the CPU time of the benchmark's own thread, which the
// other processes of a busy machine do not inflate (wall time, ns/op,
// counts the time the thread waits for a CPU).
type cpuTimer struct{ start time.Duration }

func startCPU(b *testing.B) *cpuTimer {
	runtime.LockOSThread()
	b.Cleanup(runtime.UnlockOSThread)
	return &cpuTimer{start: threadCPU()}
}

// report adds cpu-ns/op to the benchmark's results.
func (c *cpuTimer) report(b *testing.B) {
	b.ReportMetric(float64(threadCPU()-c.start)/float64(b.N), "cpu-ns/op")
}

func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
