package replay

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"
)

// claimN claims n fresh jtis in ns (prefixed by tag, so calls do not
// collide) and fails t on the first that is not accepted.
func claimN(t *testing.T, s *Memory, ns, tag string, n int, until time.Time) {
	t.Helper()
	for i := range n {
		if err := s.Claim(context.Background(), ns, tag+strconv.Itoa(i), until); err != nil {
			t.Fatalf("%s: claim %d of %d: %v", ns, i+1, n, err)
		}
	}
}

// wantRefused fails t unless a fresh jti in ns is refused with want, which
// must also read as ErrFull to callers that only ask that.
func wantRefused(t *testing.T, s *Memory, ns string, until time.Time, want error) {
	t.Helper()
	err := s.Claim(context.Background(), ns, "fresh-"+strconv.FormatInt(until.UnixNano(), 10), until)
	if err != want || !errors.Is(err, ErrFull) {
		t.Fatalf("%s: got %v, want %v (and errors.Is ErrFull)", ns, err, want)
	}
}

// TestMemoryNamespaceBound: a namespace that floods fresh jtis is refused
// at its own bound while other namespaces keep claiming, and its earlier
// jtis are still replays.
func TestMemoryNamespaceBound(t *testing.T) {
	clk := newFakeClock(epoch)
	s := NewMemory(MemoryConfig{MaxEntries: 100, MaxEntriesPerNamespace: 10, Clock: clk.Now})
	ctx := context.Background()
	until := epoch.Add(time.Minute)

	claimN(t, s, "flooder", "j", 10, until)
	wantRefused(t, s, "flooder", until, ErrNamespaceFull)
	if err := s.Claim(ctx, "flooder", "j0", until); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay of the flooder's jti: got %v, want ErrReplayed", err)
	}
	for _, ns := range []string{"victim-a", "victim-b"} {
		claimN(t, s, ns, "j", 10, until)
	}
	wantRefused(t, s, "flooder", until, ErrNamespaceFull)
	if got := s.Len(); got != 30 {
		t.Fatalf("Len = %d, want 30", got)
	}
}

// TestMemoryNamespaceBoundExpiryFirst: a namespace at its bound gets room
// back as its own entries expire, before anything is refused, and no live
// entry is ever evicted for it.
func TestMemoryNamespaceBoundExpiryFirst(t *testing.T) {
	clk := newFakeClock(epoch)
	s := NewMemory(MemoryConfig{MaxEntries: 100, MaxEntriesPerNamespace: 10, Clock: clk.Now})
	ctx := context.Background()

	claimN(t, s, "busy", "short", 5, epoch.Add(time.Minute))
	claimN(t, s, "busy", "long", 5, epoch.Add(time.Hour))
	wantRefused(t, s, "busy", epoch.Add(time.Hour), ErrNamespaceFull)

	clk.Advance(time.Minute)
	claimN(t, s, "busy", "new", 5, epoch.Add(time.Hour))
	wantRefused(t, s, "busy", epoch.Add(time.Hour), ErrNamespaceFull)
	for i := range 5 {
		if err := s.Claim(ctx, "busy", "long"+strconv.Itoa(i), epoch.Add(time.Hour)); !errors.Is(err, ErrReplayed) {
			t.Fatalf("long-lived %d: got %v, want ErrReplayed", i, err)
		}
	}
}

// TestMemoryTotalFullOfExpired: when the whole store is held by expired
// entries, a claim reclaims them instead of being refused.
func TestMemoryTotalFullOfExpired(t *testing.T) {
	clk := newFakeClock(epoch)
	s := NewMemory(MemoryConfig{MaxEntries: 40, MaxEntriesPerNamespace: 10, Clock: clk.Now})
	for i := range 4 {
		claimN(t, s, "ns"+strconv.Itoa(i), "j", 10, epoch.Add(time.Minute))
	}
	wantRefused(t, s, "late", epoch.Add(time.Hour), ErrFull)
	clk.Advance(time.Minute)
	claimN(t, s, "late", "j", 10, epoch.Add(time.Hour))
	if got := s.Len(); got > 40 {
		t.Fatalf("Len = %d, over the cap", got)
	}
}

// TestMemoryTotalBound: namespaces each within their own bound still
// cannot hold more than the store's total, and the refusal says the store
// is full rather than blaming the namespace.
func TestMemoryTotalBound(t *testing.T) {
	clk := newFakeClock(epoch)
	s := NewMemory(MemoryConfig{MaxEntries: 50, MaxEntriesPerNamespace: 10, Clock: clk.Now})
	until := epoch.Add(time.Minute)
	for i := range 5 {
		claimN(t, s, "ns"+strconv.Itoa(i), "j", 10, until)
	}
	wantRefused(t, s, "ns5", until, ErrFull)
	// A namespace over its own bound is told so, full store or not.
	wantRefused(t, s, "ns0", until, ErrNamespaceFull)
	if got := s.Len(); got != 50 {
		t.Fatalf("Len = %d, want 50", got)
	}
}

// TestMemoryGroupBound: namespaces minted at will ("dpop#" and a fresh
// key's thumbprint per proof) share their group's bound, so together they
// cannot take the room of namespaces outside the group; each key still
// has its own bound inside it.
func TestMemoryGroupBound(t *testing.T) {
	clk := newFakeClock(epoch)
	s := NewMemory(MemoryConfig{MaxEntries: 100, MaxEntriesPerNamespace: 10, MaxEntriesPerGroup: 20, Clock: clk.Now})
	until := epoch.Add(time.Minute)

	claimN(t, s, "dpop#one-key", "j", 10, until)
	wantRefused(t, s, "dpop#one-key", until, ErrNamespaceFull)
	for i := range 10 {
		claimN(t, s, "dpop#key-"+strconv.Itoa(i), "j", 1, until)
	}
	wantRefused(t, s, "dpop#another-key", until, ErrGroupFull)
	wantRefused(t, s, "dpop#key-0", until, ErrGroupFull)
	// Outside the group: an issuer, and another group.
	claimN(t, s, iss, "j", 10, until)
	claimN(t, s, "other#key", "j", 10, until)
	wantRefused(t, s, "dpop#key-1", until, ErrGroupFull)

	clk.Advance(time.Minute)
	claimN(t, s, "dpop#after", "j", 10, epoch.Add(time.Hour))
}

// TestMemoryDefaultShares: unset, a namespace may hold a tenth of the
// store and a group half of it, and a share of the whole store is no bound
// of its own.
func TestMemoryDefaultShares(t *testing.T) {
	clk := newFakeClock(epoch)
	until := epoch.Add(time.Minute)

	s := NewMemory(MemoryConfig{MaxEntries: 1000, Clock: clk.Now})
	claimN(t, s, iss, "j", 100, until)
	wantRefused(t, s, iss, until, ErrNamespaceFull)
	for i := range 500 {
		claimN(t, s, "dpop#"+strconv.Itoa(i), "j", 1, until)
	}
	wantRefused(t, s, "dpop#more", until, ErrGroupFull)

	// Below ten entries, a namespace still gets one.
	s = NewMemory(MemoryConfig{MaxEntries: 5, Clock: clk.Now})
	claimN(t, s, iss, "j", 1, until)
	wantRefused(t, s, iss, until, ErrNamespaceFull)

	s = NewMemory(MemoryConfig{MaxEntries: 10, MaxEntriesPerNamespace: 1000, MaxEntriesPerGroup: 10, Clock: clk.Now})
	claimN(t, s, "dpop#k", "j", 10, until)
	wantRefused(t, s, "dpop#k", until, ErrFull)
}

// TestMemoryNamespacesAreDistinct: namespaces that differ only where a
// careless key would merge them are counted apart.
func TestMemoryNamespacesAreDistinct(t *testing.T) {
	clk := newFakeClock(epoch)
	s := NewMemory(MemoryConfig{MaxEntries: 100, MaxEntriesPerNamespace: 2, Clock: clk.Now})
	until := epoch.Add(time.Minute)
	for _, ns := range []string{"a", "a#", "a#b", "ab", "A", ""} {
		claimN(t, s, ns, "j", 2, until)
		wantRefused(t, s, ns, until, ErrNamespaceFull)
	}
}
