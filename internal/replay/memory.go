package replay

import (
	"context"
	"encoding/binary"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxEntries is the capacity of a Memory store whose MaxEntries is
// not set.
const DefaultMaxEntries = 1_000_000

const (
	// DefaultNamespaceShare is the divisor of MaxEntries that gives the
	// bound of one namespace when MaxEntriesPerNamespace is not set: a
	// tenth, so that one client flooding fresh jtis leaves nine tenths to
	// the others, while one busy client still fits (at the default
	// 1,000,000, 100,000 entries: about 1,500 DPoP proofs a second on one
	// key, or 55 assertions a second living the 30-minute maximum).
	DefaultNamespaceShare = 10
	// DefaultGroupShare is the divisor of MaxEntries that gives the bound
	// of one group when MaxEntriesPerGroup is not set: half, so that
	// namespaces a client can mint at will (a DPoP key costs nothing) take
	// at most half the store, and the rest stays for the namespaces outside
	// the group, the issuers' client assertions.
	DefaultGroupShare = 2
)

const (
	// memShards spreads lock contention well beyond the core count while
	// keeping each shard's sweep short (1,000,000 / 64 ≈ 15,600 entries).
	memShards = 64
	// minSweep avoids sweeping tiny maps over and over while they grow.
	minSweep = 64
	// groupSep ends a namespace's group: "dpop#<thumbprint>" is in group
	// "dpop".
	groupSep = '#'
)

// MemoryConfig configures NewMemory.
type MemoryConfig struct {
	// MaxEntries bounds the number of entries held; zero or less means
	// DefaultMaxEntries.
	MaxEntries int
	// MaxEntriesPerNamespace bounds the entries of one namespace, that is
	// one client (an issuer, or one DPoP key), so that a client flooding the
	// store with fresh jtis is refused on its own while the others keep
	// claiming. Zero or less means MaxEntries/DefaultNamespaceShare (at
	// least 1); MaxEntries or more means no bound but the total.
	MaxEntriesPerNamespace int
	// MaxEntriesPerGroup bounds the entries of all namespaces of a group
	// together: the part of a namespace before its first '#' ("dpop" for
	// "dpop#<thumbprint>"); a namespace without '#' is in no group. It
	// stops a client that can make namespaces at will (a new DPoP key per
	// proof) from filling the store through many small ones. Zero or less
	// means MaxEntries/DefaultGroupShare (at least 1); MaxEntries or more
	// means no bound but the total.
	MaxEntriesPerGroup int
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
}

// Memory is a bounded in-memory Store for a single replica. It keeps a
// 16-byte hash of (namespace, jti), the expiry in whole seconds and a
// 4-byte reference to the namespace's count (about 55 bytes of heap per
// entry at a million entries), and never evicts an entry before it expires.
//
// Three bounds apply, checked in this order: the namespace's own, its
// group's, and the store's total. When a claim would pass one, expired
// entries are reclaimed first; only if that made no room is the claim
// refused, with ErrNamespaceFull, ErrGroupFull or ErrFull, so a client over
// its share is refused alone and the others are not.
type Memory struct {
	clock func() time.Time
	// max, maxNS and maxGroup are the total, per-namespace and per-group
	// bounds.
	max, maxNS, maxGroup int64
	// count is the number of entries across all shards. The bound is
	// global rather than per shard so that a store of N entries holds N,
	// not N minus the unevenness of the hash.
	count  atomic.Int64
	shards [memShards]memShard
	// owners count entries per namespace and per group. A namespace's
	// entries are spread over every entry shard, so its count cannot live
	// in one; the counts have shards of their own, locked after an entry
	// shard and never before one.
	owners [memShards]ownerShard
	// nsSeed and groupSeed key the hashes of namespaces and groups: random
	// per store, so a client cannot pick a namespace that shares another's
	// count, and independent, so a group never shares a namespace's.
	nsSeed, groupSeed maphash.Seed
}

// memKey is the first half of SHA-256(namespace \x00 jti): at 128 bits a
// collision among a million live entries has odds of about 2^-88.
type memKey [16]byte

// memEntry is what a shard keeps per key: 8 bytes, so a map slot is 24.
type memEntry struct {
	// exp is the expiry as unix seconds, rounded up so an entry never
	// lapses before its token's until.
	exp uint32
	// ns is the count the entry is held against, so that a sweep gives the
	// room back to its namespace and group.
	ns ownerID
}

type memShard struct {
	mu sync.Mutex
	m  map[memKey]memEntry
	// sweepAt is the size at which an insert reclaims expired entries
	// before the store is full; doubling it after each sweep keeps sweeping
	// O(1) amortised per insert while memory follows the live set rather
	// than growing to the cap.
	sweepAt int
	// minExp is a lower bound on the expiries in m, written under mu and
	// read without it by reclaim: before it nothing can be reclaimed, so a
	// full store answers ErrFull without a futile scan. Expiries are whole
	// seconds, so a shard sweeps at most once a second however hard a full
	// store is pushed.
	minExp atomic.Uint32
	_      [64]byte // keeps neighbouring shards' locks off one cache line
}

// ownerKey is a seeded 64-bit hash of a namespace or a group. A group key
// is never 0, which marks a namespace in no group.
type ownerKey uint64

// ownerID names a count: its shard and its slot there, plus one. Entries
// hold an ID rather than the 8-byte key, which keeps them at 8 bytes; a
// slot is reused only once its count is back to zero, and then no entry
// holds its ID any more.
type ownerID uint32

func (id ownerID) shard() int { return int(id-1) % memShards }
func (id ownerID) slot() int  { return int(id-1) / memShards }

// owner is the namespace and group a claim is counted against.
type owner struct {
	ns, group ownerKey
}

// ownerCount is the number of entries held by a namespace or a group. A
// namespace's also names its group, to be released with it.
type ownerCount struct {
	key   ownerKey
	n     int64
	group ownerKey
}

// ownerShard holds the counts whose key falls in it. A count back at zero
// is dropped and its slot reused, so the table follows the live
// namespaces, not every namespace ever seen.
type ownerShard struct {
	mu     sync.Mutex
	slots  map[ownerKey]int
	counts []ownerCount
	free   []int
	_      [64]byte
}

// NewMemory returns an empty Memory store.
func NewMemory(cfg MemoryConfig) *Memory {
	maxEntries := cfg.MaxEntries
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	// A share of the whole store or more is no bound of its own: the
	// total refuses first, and says so with ErrFull.
	share := func(n, divisor int) int64 {
		if n <= 0 {
			n = max(maxEntries/divisor, 1)
		}
		if n >= maxEntries {
			return math.MaxInt64
		}
		return int64(n)
	}
	clock := cfg.Clock
	if clock == nil {
		clock = time.Now
	}
	s := &Memory{
		clock:     clock,
		max:       int64(maxEntries),
		maxNS:     share(cfg.MaxEntriesPerNamespace, DefaultNamespaceShare),
		maxGroup:  share(cfg.MaxEntriesPerGroup, DefaultGroupShare),
		nsSeed:    maphash.MakeSeed(),
		groupSeed: maphash.MakeSeed(),
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.m = make(map[memKey]memEntry)
		sh.sweepAt = minSweep
		sh.minExp.Store(math.MaxUint32)
		s.owners[i].slots = make(map[ownerKey]int)
	}
	return s
}

// Claim implements Store. An until that is not after the current time is
// accepted without being stored: such a token has already expired and
// should have been rejected before reaching the store.
func (s *Memory) Claim(_ context.Context, namespace, jti string, until time.Time) error {
	sum, err := digest(namespace, jti)
	if err != nil {
		return err
	}
	now := s.clock()
	if !until.After(now) {
		return nil
	}
	k, exp, nowSec := memKey(sum[:16]), ceilUnix(until), now.Unix()
	o := s.ownerOf(namespace)
	sh := &s.shards[binary.LittleEndian.Uint64(sum[16:24])%memShards]
	err = s.claimIn(sh, k, o, exp, nowSec)
	// Never hold two entry shards' locks: reclaim takes them one at a
	// time, then the claim is retried from the start, since another
	// goroutine may have claimed the same key meanwhile. Whichever bound
	// refused it, the expired entries go first, from every shard: a
	// namespace's entries lie in all of them.
	if !isFull(err) || !s.reclaim(nowSec) {
		return err
	}
	return s.claimIn(sh, k, o, exp, nowSec)
}

func isFull(err error) bool {
	return err == ErrFull || err == ErrNamespaceFull || err == ErrGroupFull
}

func (s *Memory) ownerOf(namespace string) owner {
	o := owner{ns: ownerKey(maphash.String(s.nsSeed, namespace))}
	if i := strings.IndexByte(namespace, groupSep); i >= 0 {
		o.group = ownerKey(maphash.String(s.groupSeed, namespace[:i]) | 1)
	}
	return o
}

func (s *Memory) claimIn(sh *memShard, k memKey, o owner, exp uint32, now int64) error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.m[k]; ok {
		if int64(e.exp) > now {
			return ErrReplayed
		}
		// Reusing an expired slot needs no room: it is still counted, and
		// against this namespace, since the key hashes the namespace.
		sh.m[k] = memEntry{exp: exp, ns: e.ns}
		sh.lowerMinExp(exp)
		return nil
	}
	if len(sh.m) >= sh.sweepAt && sh.reclaimable(now) {
		s.sweep(sh, now)
	}
	id, err := s.reserve(o)
	if err != nil && sh.reclaimable(now) && s.sweep(sh, now) > 0 {
		id, err = s.reserve(o)
	}
	if err != nil {
		return err
	}
	sh.m[k] = memEntry{exp: exp, ns: id}
	sh.lowerMinExp(exp)
	return nil
}

// reserve counts one more entry against the namespace, its group and the
// store, or against none of them if any is at its bound, and returns the
// namespace's count. The namespace goes first so that a client over its
// own share is told so even when the store is full too.
func (s *Memory) reserve(o owner) (ownerID, error) {
	id, ok := s.ownerAdd(o.ns, o.group, s.maxNS)
	if !ok {
		return 0, ErrNamespaceFull
	}
	if o.group != 0 {
		if _, ok := s.ownerAdd(o.group, 0, s.maxGroup); !ok {
			s.ownerRelease(id, 1)
			return 0, ErrGroupFull
		}
	}
	for {
		n := s.count.Load()
		if n >= s.max {
			s.release(id, 1)
			return 0, ErrFull
		}
		if s.count.CompareAndSwap(n, n+1) {
			return id, nil
		}
	}
}

// ownerAdd counts one more entry for key, whose group is group, unless its
// count is at limit.
func (s *Memory) ownerAdd(key, group ownerKey, limit int64) (ownerID, bool) {
	shard := int(uint64(key) % memShards)
	t := &s.owners[shard]
	t.mu.Lock()
	defer t.mu.Unlock()
	slot, ok := t.slots[key]
	if !ok {
		if n := len(t.free); n > 0 {
			slot, t.free = t.free[n-1], t.free[:n-1]
		} else {
			slot = len(t.counts)
			t.counts = append(t.counts, ownerCount{})
		}
		t.slots[key] = slot
		t.counts[slot] = ownerCount{key: key, group: group}
	}
	c := &t.counts[slot]
	if c.n >= limit {
		return 0, false
	}
	c.n++
	return ownerID(slot*memShards + shard + 1), true
}

// ownerRelease gives back n entries of the count id and returns the
// count's group.
func (s *Memory) ownerRelease(id ownerID, n int64) ownerKey {
	t := &s.owners[id.shard()]
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.release(id.slot(), n)
}

// release gives back n entries of the namespace count id and as many of
// its group's.
func (s *Memory) release(id ownerID, n int64) {
	group := s.ownerRelease(id, n)
	if group == 0 {
		return
	}
	t := &s.owners[uint64(group)%memShards]
	t.mu.Lock()
	defer t.mu.Unlock()
	t.release(t.slots[group], n)
}

// release gives back n entries of the count in slot, whose lock is held,
// and returns its group.
func (t *ownerShard) release(slot int, n int64) ownerKey {
	c := &t.counts[slot]
	group := c.group
	if c.n -= n; c.n <= 0 {
		delete(t.slots, c.key)
		*c = ownerCount{}
		t.free = append(t.free, slot)
	}
	return group
}

// reclaim sweeps every shard that may hold an expired entry and reports
// whether any was freed.
func (s *Memory) reclaim(now int64) bool {
	freed := 0
	for i := range s.shards {
		sh := &s.shards[i]
		if !sh.reclaimable(now) {
			continue
		}
		sh.mu.Lock()
		if sh.reclaimable(now) {
			freed += s.sweep(sh, now)
		}
		sh.mu.Unlock()
	}
	return freed > 0
}

// sweep deletes the expired entries of sh, whose lock is held, gives their
// room back to their namespaces, groups and the store, and returns how many
// it deleted.
func (s *Memory) sweep(sh *memShard, now int64) int {
	next := uint32(math.MaxUint32)
	before := len(sh.m)
	var byNS map[ownerID]int64
	for k, e := range sh.m {
		if int64(e.exp) <= now {
			delete(sh.m, k)
			if byNS == nil {
				byNS = make(map[ownerID]int64)
			}
			byNS[e.ns]++
		} else {
			next = min(next, e.exp)
		}
	}
	sh.minExp.Store(next)
	sh.sweepAt = max(2*len(sh.m), minSweep)
	for id, n := range byNS {
		s.release(id, n)
	}
	freed := before - len(sh.m)
	s.count.Add(-int64(freed))
	return freed
}

func (sh *memShard) reclaimable(now int64) bool {
	return now >= int64(sh.minExp.Load())
}

func (sh *memShard) lowerMinExp(exp uint32) {
	if exp < sh.minExp.Load() {
		sh.minExp.Store(exp)
	}
}

// Len returns the number of entries held, including expired ones not yet
// reclaimed.
func (s *Memory) Len() int {
	return int(s.count.Load())
}

// ceilUnix rounds up so that an entry outlives its token, never the
// reverse; the clamp only matters for expiries past 2106.
func ceilUnix(t time.Time) uint32 {
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return uint32(min(max(sec, 0), math.MaxUint32))
}
