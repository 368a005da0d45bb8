package tuning

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live, headroom uint64
		want           int
	}{
		{live: 2 << 20, headroom: 64 << 20, want: 3200},   // a cached-Check server
		{live: 64 << 20, headroom: 64 << 20, want: 100},   // as large as the headroom
		{live: 200 << 20, headroom: 64 << 20, want: 100},  // a full token cache: Go's default
		{live: 0, headroom: 64 << 20, want: maxPercent},   // nothing live yet
		{live: 100 << 20, headroom: 150 << 20, want: 150}, // between
	} {
		if got := GCPercentFor(c.live, c.headroom); got != c.want {
			t.Errorf("GCPercentFor(%d, %d) = %d, want %d", c.live, c.headroom, got, c.want)
		}
	}
}

// TestTunerFollowsCollections runs real collections: after each, GOGC is
// what the live heap needs for the headroom, and stop puts 100 back.
func TestTunerFollowsCollections(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(debug.SetGCPercent(MinGCPercent))
	tuned := make(chan int, 16)
	stop, ok := start(1<<40, func(p int) {
		select {
		case tuned <- p:
		default:
		}
	})
	if !ok {
		t.Fatal("the tuner did not start with GOGC unset")
	}
	runtime.GC()
	p := <-tuned // the finalizer runs after the collection, on its own goroutine
	// A 1 TiB headroom over this test's few MiB live is far above 100.
	if p <= 1000 {
		t.Fatalf("GOGC set to %d after a collection, want the headroom's far larger value", p)
	}
	if got := debug.SetGCPercent(p); got != p {
		t.Fatalf("GOGC is %d, the tuner said it set %d", got, p)
	}
	stop()
	if got := debug.SetGCPercent(MinGCPercent); got != MinGCPercent {
		t.Fatalf("GOGC is %d after stop, want %d", got, MinGCPercent)
	}
	runtime.GC()
	runtime.GC()
	if got := debug.SetGCPercent(MinGCPercent); got != MinGCPercent {
		t.Fatalf("GOGC is %d after stop and two collections, want %d", got, MinGCPercent)
	}
}

func TestOperatorGOGCStands(t *testing.T) {
	t.Setenv("GOGC", "100")
	if _, ok := StartGCHeadroom(DefaultGCHeadroom); ok {
		t.Fatal("started although GOGC is set")
	}
	if _, ok := StartGCHeadroom(0); ok {
		t.Fatal("started with no headroom")
	}
}
