package keys

import (
	"os"
	"sync/atomic"
	"time"
)

// fileWatch is the change detection every key file shares (jwks_file,
// pem_file, hmac_secret_file, a SPIFFE bundle_file): a lookup looks at the
// file at most once per poll interval, one lookup at a time, and re-reads it
// only when stat shows another file or another modification than the last
// read saw.
type fileWatch struct {
	nextCheck atomic.Int64 // unix ns of the next look
	checking  atomic.Bool
}

// arm schedules the first look one interval after now.
func (w *fileWatch) arm(now time.Time, interval time.Duration) {
	w.nextCheck.Store(now.Add(interval).UnixNano())
}

// due reports, without locking, whether a look is due at now.
func (w *fileWatch) due(now time.Time) bool { return now.UnixNano() >= w.nextCheck.Load() }

// look calls reread when the file at path may differ from what the last
// read saw (seen, nil when nothing was read yet). Concurrent lookups skip
// the look one of them is already doing.
func (w *fileWatch) look(now time.Time, interval time.Duration, path string, seen func() os.FileInfo, reread func()) {
	if !w.checking.CompareAndSwap(false, true) {
		return
	}
	defer w.checking.Store(false)
	w.arm(now, interval)
	if fi, err := os.Stat(path); err == nil {
		if old := seen(); old != nil && sameFile(fi, old) {
			return
		}
	}
	reread()
}

func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
