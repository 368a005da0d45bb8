package replay

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is moved by hand so expiry tests never wait.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const iss = "https://issuer.example"

func TestMemoryClaim(t *testing.T) {
	clk := newFakeClock(epoch)
	s := NewMemory(MemoryConfig{Clock: clk.Now})
	ctx := context.Background()
	until := epoch.Add(time.Minute)

	if err := s.Claim(ctx, iss, "a", until); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if err := s.Claim(ctx, iss, "a", until); !errors.Is(err, ErrReplayed) {
		t.Fatalf("second claim: got %v, want ErrReplayed", err)
	}
	// A later until does not reopen the entry.
	if err := s.Claim(ctx, iss, "a", until.Add(time.Hour)); !errors.Is(err, ErrReplayed) {
		t.Fatalf("claim with later until: got %v, want ErrReplayed", err)
	}
	if err := s.Claim(ctx, "https://other.example", "a", until); err != nil {
		t.Fatalf("same jti, other issuer: %v", err)
	}
	if err := s.Claim(ctx, iss, "b", until); err != nil {
		t.Fatalf("other jti: %v", err)
	}
	if got := s.Len(); got != 3 {
		t.Fatalf("Len = %d, want 3", got)
	}
}

func TestMemoryArbitraryJTIBytes(t *testing.T) {
	s := NewMemory(MemoryConfig{Clock: newFakeClock(epoch).Now})
	ctx := context.Background()
	until := epoch.Add(time.Minute)
	jtis := []string{"", "\x00", "\x00\x00", "a\x00b", "\xff\xfe", "\r\n*1\r\n$4\r\nPING\r\n", string(make([]byte, 10000))}
	for _, jti := range jtis {
		if err := s.Claim(ctx, iss, jti, until); err != nil {
			t.Fatalf("claim %q: %v", jti, err)
		}
	}
	for _, jti := range jtis {
		if err := s.Claim(ctx, iss, jti, until); !errors.Is(err, ErrReplayed) {
			t.Fatalf("replay %q: got %v, want ErrReplayed", jti, err)
		}
	}
}

func TestMemoryIssuerNUL(t *testing.T) {
	s := NewMemory(MemoryConfig{Clock: newFakeClock(epoch).Now})
	ctx := context.Background()
	until := epoch.Add(time.Minute)
	// Without the check, ("a\x00b", "c") and ("a", "b\x00c") would collide.
	if err := s.Claim(ctx, "a", "b\x00c", until); err != nil {
		t.Fatal(err)
	}
	err := s.Claim(ctx, "a\x00b", "c", until)
	if err == nil || errors.Is(err, ErrReplayed) || errors.Is(err, ErrFull) {
		t.Fatalf("issuer with NUL: got %v, want a store error", err)
	}
}

func TestMemoryExpiry(t *testing.T) {
	// Start mid-second to exercise the rounding of expiries.
	start := epoch.Add(300 * time.Millisecond)
	clk := newFakeClock(start)
	s := NewMemory(MemoryConfig{Clock: clk.Now})
	ctx := context.Background()
	until := start.Add(10 * time.Second)

	if err := s.Claim(ctx, iss, "a", until); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10*time.Second - time.Nanosecond)
	if err := s.Claim(ctx, iss, "a", until); !errors.Is(err, ErrReplayed) {
		t.Fatalf("just before until: got %v, want ErrReplayed", err)
	}
	// Expiries are rounded up to whole seconds, never down.
	clk.Advance(time.Second)
	if err := s.Claim(ctx, iss, "a", clk.Now().Add(time.Minute)); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if err := s.Claim(ctx, iss, "a", clk.Now().Add(time.Minute)); !errors.Is(err, ErrReplayed) {
		t.Fatalf("reclaimed entry replayed: got %v, want ErrReplayed", err)
	}
}

func TestMemoryPastUntil(t *testing.T) {
	clk := newFakeClock(epoch)
	s := NewMemory(MemoryConfig{Clock: clk.Now})
	ctx := context.Background()
	for _, until := range []time.Time{epoch, epoch.Add(-time.Second), {}} {
		if err := s.Claim(ctx, iss, "a", until); err != nil {
			t.Fatalf("until %v: %v", until, err)
		}
	}
	if got := s.Len(); got != 0 {
		t.Fatalf("Len = %d, want 0: expired claims must not be stored", got)
	}
}

func TestMemoryFarFutureUntil(t *testing.T) {
	clk := newFakeClock(epoch)
	s := NewMemory(MemoryConfig{Clock: clk.Now})
	ctx := context.Background()
	until := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.Claim(ctx, iss, "a", until); err != nil {
		t.Fatal(err)
	}
	clk.Advance(50 * 365 * 24 * time.Hour)
	if err := s.Claim(ctx, iss, "a", until); !errors.Is(err, ErrReplayed) {
		t.Fatalf("got %v, want ErrReplayed", err)
	}
}

// wholeStore lets one namespace fill the store, for the tests of the total
// bound.
func wholeStore(max int, clk *fakeClock) MemoryConfig {
	return MemoryConfig{MaxEntries: max, MaxEntriesPerNamespace: max, Clock: clk.Now}
}

func TestMemoryFull(t *testing.T) {
	clk := newFakeClock(epoch)
	const max = 100
	s := NewMemory(wholeStore(max, clk))
	ctx := context.Background()
	until := epoch.Add(time.Minute)

	for i := range max {
		if err := s.Claim(ctx, iss, strconv.Itoa(i), until); err != nil {
			t.Fatalf("claim %d: %v", i, err)
		}
	}
	if err := s.Claim(ctx, iss, "one-too-many", until); err != ErrFull {
		t.Fatalf("claim past capacity: got %v, want ErrFull itself", err)
	}
	// A replay is still reported as a replay, not as a full store.
	if err := s.Claim(ctx, iss, "0", until); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay in a full store: got %v, want ErrReplayed", err)
	}
	clk.Advance(59 * time.Second)
	if err := s.Claim(ctx, iss, "one-too-many", until); !errors.Is(err, ErrFull) {
		t.Fatalf("nothing expired yet: got %v, want ErrFull", err)
	}
	if got := s.Len(); got != max {
		t.Fatalf("Len = %d, want %d: unexpired entries must not be evicted", got, max)
	}

	clk.Advance(time.Second)
	for i := range max {
		if err := s.Claim(ctx, iss, "new"+strconv.Itoa(i), clk.Now().Add(time.Minute)); err != nil {
			t.Fatalf("claim %d after expiry: %v", i, err)
		}
	}
	if err := s.Claim(ctx, iss, "one-too-many", clk.Now().Add(time.Minute)); !errors.Is(err, ErrFull) {
		t.Fatalf("refilled: got %v, want ErrFull", err)
	}
}

func TestMemoryFullReclaimsOnlyExpired(t *testing.T) {
	clk := newFakeClock(epoch)
	const max = 100
	s := NewMemory(wholeStore(max, clk))
	ctx := context.Background()

	// Half short-lived, half long-lived, interleaved.
	for i := range max {
		until := epoch.Add(time.Hour)
		if i%2 == 0 {
			until = epoch.Add(time.Minute)
		}
		if err := s.Claim(ctx, iss, strconv.Itoa(i), until); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(2 * time.Minute)
	for i := range max / 2 {
		if err := s.Claim(ctx, iss, "new"+strconv.Itoa(i), epoch.Add(time.Hour)); err != nil {
			t.Fatalf("claim %d after half expired: %v", i, err)
		}
	}
	if err := s.Claim(ctx, iss, "one-too-many", epoch.Add(time.Hour)); !errors.Is(err, ErrFull) {
		t.Fatalf("got %v, want ErrFull", err)
	}
	for i := 1; i < max; i += 2 {
		if err := s.Claim(ctx, iss, strconv.Itoa(i), epoch.Add(time.Hour)); !errors.Is(err, ErrReplayed) {
			t.Fatalf("long-lived %d: got %v, want ErrReplayed", i, err)
		}
	}
}

// TestMemoryCapacityIsExact checks that hashing into shards does not cost
// capacity: a store of N holds exactly N unexpired entries, and an expired
// entry in any shard makes room for a claim in any other.
func TestMemoryCapacityIsExact(t *testing.T) {
	clk := newFakeClock(epoch)
	const max = 100_000
	s := NewMemory(wholeStore(max, clk))
	ctx := context.Background()
	for i := range max {
		until := epoch.Add(time.Hour)
		if i == max/2 {
			until = epoch.Add(time.Minute)
		}
		if err := s.Claim(ctx, iss, strconv.Itoa(i), until); err != nil {
			t.Fatalf("claim %d: %v", i, err)
		}
	}
	for i := range 100 {
		if err := s.Claim(ctx, iss, "x"+strconv.Itoa(i), epoch.Add(time.Hour)); !errors.Is(err, ErrFull) {
			t.Fatalf("claim past capacity: got %v, want ErrFull", err)
		}
	}
	clk.Advance(time.Minute)
	// Whichever shard the next key lands in, the one expired entry (in one
	// shard) makes room for exactly one claim.
	if err := s.Claim(ctx, iss, "x0", epoch.Add(time.Hour)); err != nil {
		t.Fatalf("after one entry expired: %v", err)
	}
	if err := s.Claim(ctx, iss, "x1", epoch.Add(time.Hour)); !errors.Is(err, ErrFull) {
		t.Fatalf("got %v, want ErrFull", err)
	}
	if got := s.Len(); got != max {
		t.Fatalf("Len = %d, want %d", got, max)
	}
}

// TestMemoryExpiredDoNotPileUp checks that expired entries are reclaimed
// before the store is full, so memory follows the live set, not the cap.
func TestMemoryExpiredDoNotPileUp(t *testing.T) {
	clk := newFakeClock(epoch)
	s := NewMemory(MemoryConfig{MaxEntries: 1_000_000, Clock: clk.Now})
	ctx := context.Background()
	for i := range 200_000 {
		if err := s.Claim(ctx, iss, strconv.Itoa(i), clk.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 999 {
			clk.Advance(time.Second)
		}
	}
	// About 1,000 live entries; sweeps may leave up to twice the survivors
	// of the last sweep, per shard.
	if got := s.Len(); got > 20_000 {
		t.Fatalf("Len = %d: expired entries are piling up", got)
	}
}

func TestMemoryConcurrentSameJTI(t *testing.T) {
	s := NewMemory(MemoryConfig{})
	ctx := context.Background()
	until := time.Now().Add(time.Minute)
	const goroutines = 64
	for round := range 20 {
		jti := "jti-" + strconv.Itoa(round)
		var ok, replayed atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range goroutines {
			wg.Go(func() {
				<-start
				switch err := s.Claim(ctx, iss, jti, until); {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrReplayed):
					replayed.Add(1)
				default:
					t.Errorf("claim: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		if ok.Load() != 1 || replayed.Load() != goroutines-1 {
			t.Fatalf("round %d: %d accepted, %d replayed; want 1 and %d", round, ok.Load(), replayed.Load(), goroutines-1)
		}
	}
}

// TestMemoryConcurrentChurn runs claims, replays, sweeps and Len together
// for the race detector, over namespaces with their own bounds and a group,
// then checks that the counts came out exact: once everything has expired,
// each bound admits exactly its size again.
func TestMemoryConcurrentChurn(t *testing.T) {
	clk := newFakeClock(epoch)
	const max, perNS, perGroup = 4096, 1024, 1536
	s := NewMemory(MemoryConfig{MaxEntries: max, MaxEntriesPerNamespace: perNS, MaxEntriesPerGroup: perGroup, Clock: clk.Now})
	ctx := context.Background()
	// Even goroutines claim in an issuer's namespace, odd ones in a DPoP
	// key's, so the group fills too.
	namespace := func(g int) string {
		if g%2 == 0 {
			return "issuer-" + strconv.Itoa(g)
		}
		return "dpop#key-" + strconv.Itoa(g)
	}
	var wg sync.WaitGroup
	var accepted, full atomic.Int64
	for g := range 8 {
		wg.Go(func() {
			ns := namespace(g)
			for i := range 5000 {
				jti := strconv.Itoa(i)
				if i%500 == 0 {
					clk.Advance(time.Second)
					_ = s.Len()
				}
				// Other goroutines move the clock between the two claims,
				// by far less than a minute.
				until := clk.Now().Add(time.Minute)
				err := s.Claim(ctx, ns, jti, until)
				if errors.Is(err, ErrFull) {
					full.Add(1)
					continue
				}
				accepted.Add(1)
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				if err := s.Claim(ctx, ns, jti, until); !errors.Is(err, ErrReplayed) {
					t.Errorf("replay: got %v, want ErrReplayed", err)
					return
				}
			}
		})
	}
	wg.Wait()
	// The bounds were reached, and expired entries were reclaimed to make
	// room.
	if full.Load() == 0 || accepted.Load() <= max {
		t.Fatalf("%d accepted, %d full: the test did not exercise full bounds", accepted.Load(), full.Load())
	}
	if n := s.Len(); n > max {
		t.Fatalf("Len = %d, over the cap", n)
	}

	clk.Advance(2 * time.Minute)
	until := clk.Now().Add(time.Minute)
	fill := func(ns string, n int, then error) {
		t.Helper()
		for i := range n {
			if err := s.Claim(ctx, ns, "after-"+strconv.Itoa(i), until); err != nil {
				t.Fatalf("%s: claim %d of %d: %v", ns, i, n, err)
			}
		}
		if err := s.Claim(ctx, ns, "one-too-many", until); err != then {
			t.Fatalf("%s: claim %d: got %v, want %v", ns, n, err, then)
		}
	}
	fill("issuer-0", perNS, ErrNamespaceFull)
	fill("dpop#key-1", perNS, ErrNamespaceFull)
	fill("dpop#key-3", perGroup-perNS, ErrGroupFull)
	fill("issuer-2", perNS, ErrNamespaceFull)
	fill("issuer-4", max-perNS-perGroup-perNS, ErrFull)
}

// manyIssuers are namespaces enough for a benchmark or a full store to
// stay within each one's default share.
func manyIssuers() []string {
	out := make([]string, 16)
	for i := range out {
		out[i] = iss + "/" + strconv.Itoa(i)
	}
	return out
}

// fillMemory claims n distinct jtis and returns the heap growth per entry.
func fillMemory(n int) (float64, *Memory) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := NewMemory(MemoryConfig{MaxEntries: n})
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	buf := []byte("00000000-0000-4000-8000-")
	issuers := manyIssuers()
	for i := range n {
		jti := strconv.AppendInt(buf, int64(i), 10)
		if err := s.Claim(ctx, issuers[i%len(issuers)], string(jti), until); err != nil {
			panic(fmt.Sprintf("claim %d of %d: %v", i, n, err))
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perEntry := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
	return perEntry, s
}

func TestMemoryFootprint(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a million entries")
	}
	const n = 1_000_000
	perEntry, s := fillMemory(n)
	if got := s.Len(); got != n {
		t.Fatalf("Len = %d, want %d", got, n)
	}
	t.Logf("%.1f heap bytes per entry at %d entries", perEntry, n)
	if perEntry > 150 {
		t.Fatalf("%.1f heap bytes per entry, want at most 150", perEntry)
	}
	runtime.KeepAlive(s)
}

func BenchmarkMemoryFootprint(b *testing.B) {
	var perEntry float64
	for b.Loop() {
		var s *Memory
		perEntry, s = fillMemory(DefaultMaxEntries)
		runtime.KeepAlive(s)
	}
	b.ReportMetric(perEntry, "B/entry")
}

func BenchmarkMemoryClaim(b *testing.B) {
	// Room for every claim, so the benchmark measures inserts, not ErrFull;
	// spread over namespaces, each well within its share.
	s := NewMemory(MemoryConfig{MaxEntries: 2*b.N + DefaultMaxEntries})
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	issuers := manyIssuers()
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		base := seq.Add(1) << 40
		buf := []byte("00000000-0000-4000-8000-")
		for i := int64(0); pb.Next(); i++ {
			jti := strconv.AppendInt(buf, base+i, 10)
			if err := s.Claim(ctx, issuers[i%int64(len(issuers))], string(jti), until); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkMemoryReplay(b *testing.B) {
	s := NewMemory(MemoryConfig{})
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	if err := s.Claim(ctx, iss, "hot", until); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Claim(ctx, iss, "hot", until); !errors.Is(err, ErrReplayed) {
				b.Fatal(err)
			}
		}
	})
}
