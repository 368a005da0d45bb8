package check

import (
	"crypto/sha256"
	"sync"
)

// tokenLRU is the token cache's least-recently-used map. It links the
// entries themselves instead of wrapping each in a list node of its own (as
// a generic LRU does), which saves a node's allocation and about 100 bytes
// an entry: at 100,000 tokens that is what keeps an entry under 512 B.
type tokenLRU struct {
	mu   sync.Mutex
	m    map[[sha256.Size]byte]*cachedToken
	ring cachedToken // sentinel: ring.next is the most recent, ring.prev the least
	size int
}

// lruLinks are a cachedToken's place in its tokenLRU: prev and next are
// guarded by the LRU's mutex; sum is set by Add before the entry can be
// found and never changes, so a holder of the entry (the cache's front)
// reads it without the lock. The rest of the entry never changes once
// added.
type lruLinks struct {
	prev, next *cachedToken
	sum        [sha256.Size]byte
}

func newTokenLRU(size int) *tokenLRU {
	l := &tokenLRU{m: make(map[[sha256.Size]byte]*cachedToken), size: size}
	l.ring.prev, l.ring.next = &l.ring, &l.ring
	return l
}

// Get returns the entry of sum and makes it the most recent.
func (l *tokenLRU) Get(sum [sha256.Size]byte) (*cachedToken, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.m[sum]
	if ok && l.ring.next != e {
		l.unlink(e)
		l.pushFront(e)
	}
	return e, ok
}

// Add makes e the entry of sum, the most recent, evicting the least recent
// once the LRU is full.
func (l *tokenLRU) Add(sum [sha256.Size]byte, e *cachedToken) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.m[sum]; ok {
		l.unlink(old)
	}
	e.sum = sum
	l.m[sum] = e
	l.pushFront(e)
	if len(l.m) > l.size {
		last := l.ring.prev
		l.unlink(last)
		delete(l.m, last.sum)
	}
}

// Remove drops the entry of sum, if any.
func (l *tokenLRU) Remove(sum [sha256.Size]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.m[sum]; ok {
		l.unlink(e)
		delete(l.m, sum)
	}
}

// Len is the number of entries.
func (l *tokenLRU) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

func (l *tokenLRU) unlink(e *cachedToken) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (l *tokenLRU) pushFront(e *cachedToken) {
	e.prev, e.next = &l.ring, l.ring.next
	l.ring.next.prev = e
	l.ring.next = e
}
