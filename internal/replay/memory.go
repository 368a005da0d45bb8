package replay

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxEntries is the capacity of a Memory store whose MaxEntries is
// not set.
const DefaultMaxEntries = 1_000_000

const (
	// memShards spreads lock contention well beyond the core count while
	// keeping each shard's sweep short (1,000,000 / 64 ≈ 15,600 entries).
	memShards = 64
	// minSweep avoids sweeping tiny maps over and over while they grow.
	minSweep = 64
)

// MemoryConfig configures NewMemory.
type MemoryConfig struct {
	// MaxEntries bounds the number of entries held; zero or less means
	// DefaultMaxEntries.
	MaxEntries int
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
}

// Memory is a bounded in-memory Store for a single replica. It keeps a
// 16-byte hash of (issuer, jti) and the expiry in whole seconds (about 45
// bytes of heap per entry at a million entries), and never evicts an entry
// before it expires.
type Memory struct {
	clock func() time.Time
	max   int64
	// count is the number of entries across all shards. The bound is
	// global rather than per shard so that a store of N entries holds N,
	// not N minus the unevenness of the hash.
	count  atomic.Int64
	shards [memShards]memShard
}

// memKey is the first half of SHA-256(issuer \x00 jti): at 128 bits a
// collision among a million live entries has odds of about 2^-88.
type memKey [16]byte

type memShard struct {
	mu sync.Mutex
	// m maps a key to its expiry as unix seconds, rounded up so an entry
	// never lapses before its token's until.
	m map[memKey]uint32
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

// errNoRoom is the shard's answer when the store is full after sweeping
// that shard; Claim then tries the other shards before giving up.
var errNoRoom = errors.New("replay: no room")

// NewMemory returns an empty Memory store.
func NewMemory(cfg MemoryConfig) *Memory {
	maxEntries := cfg.MaxEntries
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	clock := cfg.Clock
	if clock == nil {
		clock = time.Now
	}
	s := &Memory{clock: clock, max: int64(maxEntries)}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.m = make(map[memKey]uint32)
		sh.sweepAt = minSweep
		sh.minExp.Store(math.MaxUint32)
	}
	return s
}

// Claim implements Store. An until that is not after the current time is
// accepted without being stored: such a token has already expired and
// should have been rejected before reaching the store.
func (s *Memory) Claim(_ context.Context, issuer, jti string, until time.Time) error {
	sum, err := digest(issuer, jti)
	if err != nil {
		return err
	}
	now := s.clock()
	if !until.After(now) {
		return nil
	}
	k, exp, nowSec := memKey(sum[:16]), ceilUnix(until), now.Unix()
	sh := &s.shards[binary.LittleEndian.Uint64(sum[16:24])%memShards]
	err = s.claimIn(sh, k, exp, nowSec)
	if err != errNoRoom {
		return err
	}
	// Never hold two shard locks: reclaim takes them one at a time, then
	// the claim is retried from the start, since another goroutine may have
	// claimed the same key meanwhile.
	if !s.reclaim(nowSec) {
		return ErrFull
	}
	if err := s.claimIn(sh, k, exp, nowSec); err != errNoRoom {
		return err
	}
	return ErrFull
}

func (s *Memory) claimIn(sh *memShard, k memKey, exp uint32, now int64) error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.m[k]; ok {
		if int64(e) > now {
			return ErrReplayed
		}
		// Reusing an expired slot needs no room.
		sh.m[k] = exp
		sh.lowerMinExp(exp)
		return nil
	}
	if len(sh.m) >= sh.sweepAt && sh.reclaimable(now) {
		s.sweep(sh, now)
	}
	if !s.reserve() {
		if !sh.reclaimable(now) || s.sweep(sh, now) == 0 || !s.reserve() {
			return errNoRoom
		}
	}
	sh.m[k] = exp
	sh.lowerMinExp(exp)
	return nil
}

// reserve counts one more entry unless the store is full.
func (s *Memory) reserve() bool {
	for {
		n := s.count.Load()
		if n >= s.max {
			return false
		}
		if s.count.CompareAndSwap(n, n+1) {
			return true
		}
	}
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

// sweep deletes the expired entries of sh, whose lock is held, and returns
// how many it deleted.
func (s *Memory) sweep(sh *memShard, now int64) int {
	next := uint32(math.MaxUint32)
	before := len(sh.m)
	for k, e := range sh.m {
		if int64(e) <= now {
			delete(sh.m, k)
		} else {
			next = min(next, e)
		}
	}
	sh.minExp.Store(next)
	sh.sweepAt = max(2*len(sh.m), minSweep)
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
