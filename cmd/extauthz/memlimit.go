package main

import (
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// cgroupMemoryMax is where cgroup v2 shows the container's memory limit.
const cgroupMemoryMax = "/sys/fs/cgroup/memory.max"

// memLimitShare is the part of the container's memory limit the Go heap
// target may use: the rest is for goroutine stacks, the runtime, and the
// moment between a GC starting and finishing.
const memLimitShare = 0.9

// setMemoryLimit gives the Go runtime a soft memory limit of 90% of the
// container's when the operator has not set GOMEMLIMIT: without it the
// collector does not know the pod's limit, and a burst of new tokens (each
// cached entry is about a kilobyte) can take the heap past it and get the
// process OOM-killed, where collecting sooner would have done. Below the
// limit the collector is paced by GOGC and the heap headroom
// (internal/tuning); near it, by the limit.
func setMemoryLimit(log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	data, err := os.ReadFile(cgroupMemoryMax)
	if err != nil {
		return
	}
	limit, ok := memoryLimit(string(data))
	if !ok {
		return
	}
	debug.SetMemoryLimit(limit)
	log.Info("Go memory limit set from the container's", "gomemlimit_bytes", limit, "cgroup_memory_max", strings.TrimSpace(string(data)))
}

// memoryLimit is the soft limit for a cgroup memory.max value: "max" (no
// limit) and anything unreadable give none.
func memoryLimit(memoryMax string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(memoryMax), 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return int64(float64(n) * memLimitShare), true
}
