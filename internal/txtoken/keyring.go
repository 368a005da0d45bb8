package txtoken

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultPublishDelay is how long a new key is published before it signs.
// Kubernetes propagates a Secret change to each pod's volume within the
// kubelet's sync period plus its cache TTL (about a minute by default), so
// replicas see a new key up to a minute apart; an upstream then caches the
// JWKS for MaxAge. Two minutes covers both with room to spare.
const DefaultPublishDelay = 2 * time.Minute

// DefaultRefresh is how often the mount is re-read.
const DefaultRefresh = 10 * time.Second

// maxKeyFileBytes bounds one key file: a PEM private key is well under 1 KiB.
const maxKeyFileBytes = 64 << 10

// ErrNoSigner means no key may sign now: the mount holds none, or every key
// in it is still within its publish delay.
var ErrNoSigner = errors.New("txtoken: no signing key may sign yet")

// Config builds a Keyring.
type Config struct {
	// Path is a PEM file, or a directory whose files (dotfiles aside) are
	// PEM files.
	Path string
	// PublishDelay is how long a key is published before it signs; 0
	// means DefaultPublishDelay.
	PublishDelay time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Keyring holds the signing keys of the mount. Signer and the handlers read
// an immutable state swapped by Refresh, so they take no lock.
type Keyring struct {
	cfg Config

	mu sync.Mutex // serialises Refresh and guards the fields below
	// seen is when each kid was first seen; a withdrawn key leaves it, so
	// one put back waits the delay again.
	seen    map[string]int64
	sum     [sha256.Size]byte
	lastErr string

	state atomic.Pointer[ringState]
}

type ringState struct {
	// keys in the order they were published; ties in file-name order.
	keys []*Key
	jwks []byte
	algs []string
}

// Open reads the mount. A mount that cannot be read, holds a file that is
// not a usable key, or holds no key at all is an error: there is someone at
// startup to tell.
func Open(cfg Config) (*Keyring, error) {
	if cfg.PublishDelay <= 0 {
		cfg.PublishDelay = DefaultPublishDelay
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Keyring{cfg: cfg, seen: map[string]int64{}}
	keys, sum, err := readMount(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("txtoken: %s: %w", cfg.Path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("txtoken: %s holds no signing key", cfg.Path)
	}
	now := cfg.Now().UnixNano()
	// The first key counts as published already: with no previous key
	// there is nothing else to sign with.
	r.seen[keys[0].KID] = now - int64(cfg.PublishDelay)
	r.publish(keys, sum, now)
	return r, nil
}

// Refresh re-reads the mount and publishes what changed. A mount that
// cannot be read or parsed keeps the keys in use (a Secret caught halfway
// through an update looks like that) and is logged once; a mount read whole
// replaces them, so a removed key is withdrawn at once.
func (r *Keyring) Refresh() {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys, sum, err := readMount(r.cfg.Path)
	if err != nil {
		if msg := err.Error(); msg != r.lastErr {
			r.lastErr = msg
			r.cfg.Logger.Error("txtoken: re-reading signing keys failed; keeping the keys in use", "path", r.cfg.Path, "error", err)
		}
		return
	}
	r.lastErr = ""
	if sum == r.sum {
		return
	}
	old := r.state.Load()
	r.publish(keys, sum, r.cfg.Now().UnixNano())
	cur := r.state.Load()
	for _, k := range cur.keys {
		if !hasKID(old.keys, k.KID) {
			r.cfg.Logger.Info("txtoken: signing key published; it signs once the publish delay has passed",
				"kid", k.KID, "file", k.File, "alg", k.Alg, "publish_delay", r.cfg.PublishDelay)
		}
	}
	for _, k := range old.keys {
		if !hasKID(cur.keys, k.KID) {
			r.cfg.Logger.Info("txtoken: signing key withdrawn", "kid", k.KID, "file", k.File)
		}
	}
	if len(cur.keys) == 0 {
		r.cfg.Logger.Error("txtoken: the signing-key mount holds no key; rules with internal_token deny with 503 until one is added", "path", r.cfg.Path)
	}
}

// publish records first sightings and swaps in the state of keys. Called
// with mu held (or before r is shared).
func (r *Keyring) publish(keys []*Key, sum [sha256.Size]byte, now int64) {
	seen := make(map[string]int64, len(keys))
	uniq := keys[:0:0]
	for _, k := range keys {
		if _, dup := seen[k.KID]; dup {
			continue // the same key in two files
		}
		at, ok := r.seen[k.KID]
		if !ok {
			at = now
		}
		seen[k.KID] = at
		cp := *k
		cp.published = at
		uniq = append(uniq, &cp)
	}
	r.seen, r.sum = seen, sum
	// Stable: keys published together keep file-name order.
	slices.SortStableFunc(uniq, func(a, b *Key) int {
		switch {
		case a.published < b.published:
			return -1
		case a.published > b.published:
			return 1
		}
		return 0
	})
	st := &ringState{keys: uniq}
	set := struct {
		Keys []map[string]any `json:"keys"`
	}{Keys: make([]map[string]any, 0, len(uniq))}
	for _, k := range uniq {
		set.Keys = append(set.Keys, k.jwk)
		if !slices.Contains(st.algs, k.Alg) {
			st.algs = append(st.algs, k.Alg)
		}
	}
	slices.Sort(st.algs)
	st.jwks, _ = json.Marshal(set)
	r.state.Store(st)
}

func hasKID(keys []*Key, kid string) bool {
	for _, k := range keys {
		if k.KID == kid {
			return true
		}
	}
	return false
}

// Signer is the key that signs at now: the newest published for at least
// the publish delay.
func (r *Keyring) Signer(now time.Time) (*Key, error) {
	st := r.state.Load()
	cut := now.UnixNano() - int64(r.cfg.PublishDelay)
	for i := len(st.keys) - 1; i >= 0; i-- {
		if st.keys[i].published <= cut {
			return st.keys[i], nil
		}
	}
	return nil, ErrNoSigner
}

// Published lists the kids in the JWKS, oldest first.
func (r *Keyring) Published() []string {
	st := r.state.Load()
	out := make([]string, len(st.keys))
	for i, k := range st.keys {
		out[i] = k.KID
	}
	return out
}

// PublishDelay is the configured delay.
func (r *Keyring) PublishDelay() time.Duration { return r.cfg.PublishDelay }

// Run calls Refresh every interval until ctx ends.
func (r *Keyring) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Refresh()
		}
	}
}

// readMount reads path, a file or a directory, and hashes what it read:
// names and contents, so any change of either (a ..data symlink swap
// included) is seen.
func readMount(path string) ([]*Key, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	fi, err := os.Stat(path)
	if err != nil {
		return nil, sum, err
	}
	names := []string{path}
	if fi.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, sum, err
		}
		names = names[:0]
		for _, e := range entries {
			// ..data, ..2026_12_03... and the like are Kubernetes'
			// bookkeeping; the visible names link through them.
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			names = append(names, filepath.Join(path, e.Name()))
		}
	}
	h := sha256.New()
	var keys []*Key
	for _, name := range names {
		data, err := readFile(name)
		if err != nil {
			return nil, sum, fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(data))
		h.Write(data)
		ks, err := parseKeys(filepath.Base(name), data)
		if err != nil {
			return nil, sum, fmt.Errorf("%s: %w", name, err)
		}
		keys = append(keys, ks...)
	}
	copy(sum[:], h.Sum(nil))
	return keys, sum, nil
}

// readFile reads a regular file (through symlinks) of bounded size: a FIFO
// could block a refresh for ever.
func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxKeyFileBytes)
	}
	return data, nil
}
