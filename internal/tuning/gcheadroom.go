package tuning

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// DefaultGCHeadroom is the headroom extauthz's servers use unless told
// otherwise: it costs little next to a pod's memory limit (the manifests
// give 256 MiB) and makes collections rare while the live heap is small.
const DefaultGCHeadroom = 64 << 20

// MinGCPercent is the GOGC the headroom never goes below: Go's default.
const MinGCPercent = 100

// StreamWorkers is how many goroutines a Check server keeps to run Checks
// (grpc.NumStreamWorkers). A goroutine gRPC starts for a call begins with
// a small stack and grows it, copying, several times while a Check runs: a
// tenth of the server's CPU in profiles of the cached path. Workers keep
// their grown stacks from one Check to the next. A Check that finds them
// all busy gets a goroutine of its own, as without workers, so the number
// bounds only the memory kept (a few KiB each), not the Checks in flight.
const StreamWorkers = 64

// maxPercent bounds GOGC for a live heap of almost nothing.
const maxPercent = 1 << 20

// GCPercentFor is the GOGC that lets a heap of live bytes grow by headroom
// bytes before the next collection, at least MinGCPercent.
func GCPercentFor(live, headroom uint64) int {
	p := headroom * 100 / max(live, 1)
	return int(min(max(p, MinGCPercent), maxPercent))
}

// tuner retunes GOGC after every collection until stopped.
type tuner struct {
	headroom uint64
	mu       sync.Mutex // stop and a retune may meet
	stopped  bool
	percent  int // last set; 0 before the first collection
	tuned    func(percent int)
}

// StartGCHeadroom keeps headroom bytes of room between collections,
// unless headroom is 0 or the environment sets GOGC: an operator's GOGC
// stands. It reports whether it started; stop ends it and puts GOGC back
// to MinGCPercent.
func StartGCHeadroom(headroom uint64) (stop func(), started bool) {
	return start(headroom, nil)
}

// start is StartGCHeadroom, with tuned told every GOGC set.
func start(headroom uint64, tuned func(percent int)) (stop func(), started bool) {
	if headroom == 0 || os.Getenv("GOGC") != "" {
		return func() {}, false
	}
	t := &tuner{headroom: headroom, tuned: tuned}
	t.arm()
	return t.stop, true
}

// sentinel is garbage from the moment it is made: its finalizer runs after
// the next collection, retunes, and makes the next sentinel. A finalizer
// is the runtime's only hook that runs once per collection.
type sentinel struct{ t *tuner }

func (t *tuner) arm() {
	runtime.SetFinalizer(&sentinel{t: t}, func(s *sentinel) { s.t.afterGC() })
}

func (t *tuner) afterGC() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() == metrics.KindUint64 {
		// Setting GOGC takes the heap lock: skip a change under a tenth.
		p := GCPercentFor(sample[0].Value.Uint64(), t.headroom)
		if t.percent == 0 || p*10 < t.percent*9 || p*10 > t.percent*11 {
			t.percent = p
			debug.SetGCPercent(p)
			if t.tuned != nil {
				t.tuned(p)
			}
		}
	}
	t.arm()
}

func (t *tuner) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped {
		t.stopped = true
		debug.SetGCPercent(MinGCPercent)
	}
}
