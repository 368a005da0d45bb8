package keys

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Static source kinds, as the policy names them.
const (
	kindJWKS     = "jwks"
	kindJWKSFile = "jwks_file"
	kindPEMFile  = "pem_file"
	kindHMACFile = "hmac_secret_file"
)

// minHMACSecret is the shortest HMAC secret accepted: 256 bits, the HS256
// key size RFC 7518 section 3.2 requires.
const minHMACSecret = 32

// staticSource serves keys from configuration: an inline JWKS, or a file that
// is re-read when it changes. It never touches the network, so Keys never
// waits; a file is checked for changes at most once per FilePollInterval, by
// the one lookup that finds the check due.
type staticSource struct {
	p     *Plane
	label string
	kind  string
	path  string // "" for inline

	cur       atomic.Pointer[staticState]
	nextCheck atomic.Int64 // unix nanoseconds
	checking  atomic.Bool

	errUnknown error

	mu        sync.Mutex // guards the fields below, for /debug/keys
	lastErr   string
	lastErrAt time.Time
}

type staticState struct {
	set      *Set
	loadedAt time.Time
	// expires is when the first certificate of a PEM file expires: its
	// keys stop verifying then, whatever the file says.
	expires    time.Time
	errExpired error
	skipped    []skippedKey
	info       os.FileInfo
	sum        [sha256.Size]byte
}

func (p *Plane) inlineSource(spec Spec, label string) (Source, error) {
	s := p.newStatic(label, kindJWKS, "")
	st, err := s.parse(spec.JWKS, p.clock.Now())
	if err != nil {
		return nil, fmt.Errorf("keys: issuer %s: jwks: %w", label, err)
	}
	s.publish(st)
	p.claim(label, s, entryKey{})
	return s, nil
}

func (p *Plane) fileSource(label, kind, path string) (Source, error) {
	s := p.newStatic(label, kind, path)
	st, err := s.read(p.clock.Now())
	if err != nil {
		return nil, fmt.Errorf("keys: issuer %s: %s %s: %w", label, kind, path, err)
	}
	s.publish(st)
	s.nextCheck.Store(p.clock.Now().Add(p.cfg.FilePollInterval).UnixNano())
	p.claim(label, s, entryKey{})
	return s, nil
}

func (p *Plane) newStatic(label, kind, path string) *staticSource {
	s := &staticSource{p: p, label: label, kind: kind, path: path}
	s.errUnknown = fmt.Errorf("keys: issuer %s: %w", label, ErrUnknownKID)
	return s
}

func (s *staticSource) publish(st *staticState) {
	s.cur.Store(st)
	s.p.m.skipped(s.label, st.skipped)
}

// Keys implements Source.
func (s *staticSource) Keys(_ context.Context, kid string) ([]*Key, error) {
	if s.path != "" {
		now := s.p.clock.Now()
		if now.UnixNano() >= s.nextCheck.Load() {
			s.recheck(now)
		}
		if st := s.cur.Load(); st.errExpired != nil && now.After(st.expires) {
			return nil, st.errExpired
		}
	}
	st := s.cur.Load()
	if ks := lookup(st.set, kid); ks != nil {
		return ks, nil
	}
	s.p.m.unknownKID(s.label)
	return nil, s.errUnknown
}

// recheck re-reads the file if it changed. A file that no longer loads is
// logged and counted, and the last good keys stay in use: a half-written
// file must not take an issuer down.
func (s *staticSource) recheck(now time.Time) {
	if !s.checking.CompareAndSwap(false, true) {
		return
	}
	defer s.checking.Store(false)
	s.nextCheck.Store(now.Add(s.p.cfg.FilePollInterval).UnixNano())
	old := s.cur.Load()
	if fi, err := os.Stat(s.path); err == nil && old.info != nil && sameFile(fi, old.info) {
		return
	}
	st, err := s.read(now)
	if err != nil {
		s.mu.Lock()
		repeated := s.lastErr == err.Error()
		s.lastErr, s.lastErrAt = err.Error(), now
		s.mu.Unlock()
		if !repeated { // a missing file would otherwise be logged every poll
			s.p.m.fetched(s.label, outcomeInvalid)
			s.p.log.Error("keys: reloading key file failed; keeping the last good keys",
				"issuer", s.label, "kind", s.kind, "path", s.path, "error", err)
		}
		// Stamp the bad file as seen, so it is not re-parsed every poll.
		if fi, serr := os.Stat(s.path); serr == nil {
			cp := *old
			cp.info = fi
			s.cur.Store(&cp)
		}
		return
	}
	if st.sum == old.sum {
		cp := *old
		cp.info = st.info
		s.cur.Store(&cp)
		return
	}
	s.publish(st)
	s.mu.Lock()
	s.lastErr = ""
	s.mu.Unlock()
	s.p.m.fetched(s.label, outcomeSuccess)
	s.p.log.Info("keys: key file reloaded", "issuer", s.label, "kind", s.kind, "path", s.path, "keys", st.set.Len())
}

func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

func (s *staticSource) read(now time.Time) (*staticState, error) {
	f, err := os.Open(s.path)
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
	limit := s.p.cfg.MaxBodyBytes
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	st, err := s.parse(data, now)
	if err != nil {
		return nil, err
	}
	st.info = fi
	return st, nil
}

// parse checks key material from configuration. It is stricter than a
// fetched JWKS: a private key is a load error, not a skipped key, because
// whoever wrote it has just leaked it into a policy file.
func (s *staticSource) parse(data []byte, now time.Time) (*staticState, error) {
	st := &staticState{loadedAt: now, sum: sha256.Sum256(data)}
	switch s.kind {
	case kindJWKS, kindJWKSFile:
		set, skipped, err := parseJWKS(data, sigRules)
		if err != nil {
			return nil, err
		}
		for _, sk := range skipped {
			if sk.Reason == skipPrivate {
				return nil, fmt.Errorf("%s; give public keys only", sk)
			}
		}
		if set.Len() == 0 {
			return nil, fmt.Errorf("no usable keys (%s)", describeSkipped(skipped))
		}
		for _, sk := range skipped {
			s.p.log.Warn("keys: key skipped", "issuer", s.label, "kind", s.kind, "path", s.path, "key", sk.String())
		}
		st.set, st.skipped = set, skipped
	case kindPEMFile:
		set, expires, err := parsePEM(data, now)
		if err != nil {
			return nil, err
		}
		st.set, st.expires = set, expires
		if !expires.IsZero() {
			st.errExpired = &unavailableError{label: s.label, retryAfter: s.p.cfg.FilePollInterval,
				cause: fmt.Errorf("pem_file %s: certificate expired at %s", s.path, expires.UTC().Format(time.RFC3339))}
		}
	case kindHMACFile:
		set, err := parseHMACSecret(data)
		if err != nil {
			return nil, err
		}
		if bytes.HasSuffix(data, []byte("\n")) {
			s.p.log.Warn("keys: HMAC secret file ends with a newline, which is part of the secret",
				"issuer", s.label, "path", s.path)
		}
		st.set = set
	}
	return st, nil
}

// parseHMACSecret takes the file's bytes, exactly, as the secret.
func parseHMACSecret(data []byte) (*Set, error) {
	if len(data) < minHMACSecret {
		return nil, fmt.Errorf("secret is %d bytes, at least %d required", len(data), minHMACSecret)
	}
	// A public key used as an HMAC secret is the classic algorithm
	// confusion attack: anyone holding the public key can sign.
	trimmed := bytes.TrimSpace(data)
	if bytes.Contains(data, []byte("-----BEGIN ")) {
		return nil, errors.New("holds PEM data; hmac_secret_file takes the raw shared secret, never a key or certificate")
	}
	if isDERKey(data) {
		return nil, errors.New("holds a DER public key or certificate; hmac_secret_file takes the raw shared secret")
	}
	if json.Valid(trimmed) && bytes.HasPrefix(trimmed, []byte("{")) {
		return nil, errors.New("holds JSON (a JWK?); hmac_secret_file takes the raw shared secret")
	}
	return NewSet([]*Key{{Public: bytes.Clone(data)}}), nil
}

// isDERKey reports whether data parses as a public key or certificate in
// DER, the other encodings in which a public key could pose as a secret.
func isDERKey(data []byte) bool {
	if _, err := x509.ParsePKIXPublicKey(data); err == nil {
		return true
	}
	if _, err := x509.ParsePKCS1PublicKey(data); err == nil {
		return true
	}
	_, err := x509.ParseCertificate(data)
	return err == nil
}

func describeSkipped(sk []skippedKey) string {
	if len(sk) == 0 {
		return "the set is empty"
	}
	var b bytes.Buffer
	for i, k := range sk {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(k.String())
	}
	return b.String()
}
