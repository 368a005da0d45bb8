package introspect

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/extauthz/extauthz/internal/token"
)

// cache holds introspection answers by the SHA-256 of the token: a heap
// dump or a debug endpoint never shows a usable token.
type cache struct {
	lru *lru.Cache[[sha256.Size]byte, *entry]
}

// entry is one answer: an active token's claims, or inactive (tok nil).
type entry struct {
	tok   *token.Token
	until time.Time
}

func newCache(size int) (*cache, error) {
	l, err := lru.New[[sha256.Size]byte, *entry](size)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return &cache{lru: l}, nil
}

// get returns the entry for sum while now is before its end.
func (c *cache) get(sum [sha256.Size]byte, now time.Time) (*entry, bool) {
	e, ok := c.lru.Get(sum)
	if !ok {
		return nil, false
	}
	if !now.Before(e.until) {
		c.lru.Remove(sum)
		return nil, false
	}
	return e, true
}

func (c *cache) add(sum [sha256.Size]byte, e *entry) { c.lru.Add(sum, e) }

// Len is the number of cached answers.
func (c *Client) Len() int { return c.cache.lru.Len() }

// flight lets one request per token digest be in flight: the callers who
// come while it is are handed its answer (golang.org/x/sync/singleflight
// does this too; it is not among our dependencies, and this is the part we
// need).
type flight struct {
	mu    sync.Mutex
	calls map[[sha256.Size]byte]*call
}

type call struct {
	done chan struct{}
	tok  *token.Token
	err  error
	// waiters counts the callers handed this call's answer, for tests.
	waiters atomic.Int32
}

// waiting is how many callers wait on the call in flight for key.
func (f *flight) waiting(key [sha256.Size]byte) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.calls[key]; ok {
		return int(c.waiters.Load())
	}
	return 0
}

// do runs fn for key unless a run is in flight, whose answer it then waits
// for, as long as the caller's done channel stays open.
func (f *flight) do(done <-chan struct{}, key [sha256.Size]byte, fn func() (*token.Token, error)) (*token.Token, error, bool) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[[sha256.Size]byte]*call{}
	}
	if c, ok := f.calls[key]; ok {
		c.waiters.Add(1)
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.tok, c.err, true
		case <-done:
			return nil, errCanceled, true
		}
	}
	// errCanceled until fn returns, so a panic in fn leaves the waiters
	// an error, never a nil token without one.
	c := &call{done: make(chan struct{}), err: errCanceled}
	f.calls[key] = c
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.calls, key)
		f.mu.Unlock()
		close(c.done)
	}()
	c.tok, c.err = fn()
	return c.tok, c.err, false
}
