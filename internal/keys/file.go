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
	"strings"
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
// key size RFC 7518 section 3.2 requires. Longer algorithms need longer
// secrets (MinHMACSecretLen), which Key.Fits enforces.
const minHMACSecret = 32

// staticSource serves keys from configuration: an inline JWKS, or a file that
// is re-read when it changes. It never touches the network, so Keys never
// waits; a file is checked for changes at most once per FilePollInterval, by
// the one lookup that finds the check due.
//
// A key file is the operator's word on the issuer's keys, unlike a remote set
// whose fetch may fail on its way here: a re-read file that holds no usable
// key revokes every key of the issuer. Only a file that cannot be used at all
// (unreadable, not whole in its format, holding a private key) keeps the last
// good keys, since that is what a file caught halfway through a write looks
// like.
type staticSource struct {
	p     *Plane
	label string
	kind  string
	path  string // "" for inline

	cur   atomic.Pointer[staticState]
	watch fileWatch

	errUnknown error
	errRevoked error

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
	if err == nil {
		err = s.refuseAtLoad(st)
	}
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
	if err == nil {
		err = s.refuseAtLoad(st)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: issuer %s: %s %s: %w", label, kind, path, err)
	}
	s.publish(st)
	if st.set.Len() == 0 {
		p.log.Warn("keys: key file holds no keys; every token of the issuer is refused until keys are written to it",
			"issuer", label, "kind", kind, "path", path)
	}
	s.watch.arm(p.clock.Now(), p.cfg.FilePollInterval)
	p.claim(label, s, entryKey{})
	if kind == kindHMACFile {
		return hmacSource{s}, nil
	}
	return s, nil
}

func (p *Plane) newStatic(label, kind, path string) *staticSource {
	s := &staticSource{p: p, label: label, kind: kind, path: path}
	s.errUnknown = fmt.Errorf("keys: issuer %s: %w", label, ErrUnknownKID)
	s.errRevoked = fmt.Errorf("keys: issuer %s: %s %s has no usable keys: every key is revoked: %w", label, kind, path, ErrUnknownKID)
	return s
}

// refuseAtLoad says why st may not be loaded with the policy, which is
// stricter than a re-read: at load there is someone to tell. A key file
// that holds no key at all (a JWK Set with an empty "keys", a blank PEM
// file, an empty secret file) loads, as a revoked issuer, so that a
// revocation does not also stop restarts and policy reloads; a file of keys
// that are all unusable is a mistake and fails the load, as does an inline
// set without a usable key, and, for PEM and HMAC files (written for us),
// any unusable key or block.
func (s *staticSource) refuseAtLoad(st *staticState) error {
	switch {
	case s.kind == kindJWKS && st.set.Len() == 0,
		s.kind == kindJWKSFile && st.set.Len() == 0 && len(st.skipped) > 0:
		return fmt.Errorf("no usable keys (%s)", describeSkipped(st.skipped))
	case s.kind == kindHMACFile && len(st.skipped) > 0:
		return errors.New(st.skipped[0].Detail)
	case s.kind == kindPEMFile && len(st.skipped) > 0:
		return errors.New(st.skipped[0].String())
	}
	return nil
}

func (s *staticSource) publish(st *staticState) {
	s.cur.Store(st)
	s.p.m.skipped(s.label, st.skipped)
	for _, sk := range st.skipped {
		s.p.log.Warn("keys: key skipped", "issuer", s.label, "kind", s.kind, "path", s.path, "key", s.describe(sk))
	}
}

// describe names a skipped key for the logs; an HMAC file holds one secret,
// which needs no number.
func (s *staticSource) describe(sk skippedKey) string {
	if s.kind == kindHMACFile {
		return sk.Detail
	}
	return sk.String()
}

// hmacSource is the source of an hmac_secret_file issuer. It tells the
// policy the secret's length, so that the issuer's algorithms can be fitted
// to it (RFC 7518 section 3.2).
type hmacSource struct{ *staticSource }

// SecretLen implements SecretSizer.
func (h hmacSource) SecretLen() int {
	for _, k := range h.cur.Load().set.All() {
		if b, ok := k.Public.([]byte); ok {
			return len(b)
		}
	}
	return 0
}

// Keys implements Source.
func (s *staticSource) Keys(_ context.Context, kid string) ([]*Key, error) {
	if s.path != "" {
		now := s.p.clock.Now()
		if s.watch.due(now) {
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
	if st.set.Len() == 0 {
		return nil, s.errRevoked
	}
	return nil, s.errUnknown
}

// recheck re-reads the file if it changed. A file that cannot be used at all
// is logged and counted, and the last good keys stay in use: a half-written
// file must not take an issuer down. Any other file replaces the keys, and
// one without a usable key revokes them all, loudly.
func (s *staticSource) recheck(now time.Time) {
	s.watch.look(now, s.p.cfg.FilePollInterval, s.path, func() os.FileInfo { return s.cur.Load().info }, func() { s.reread(now) })
}

func (s *staticSource) reread(now time.Time) {
	old := s.cur.Load()
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
	if st.set.Len() == 0 {
		why := "the file holds no keys"
		if len(st.skipped) > 0 {
			why = "no key is usable: " + s.describeAll(st.skipped)
		}
		s.p.log.Error("keys: key file has no usable keys; every key of the issuer is revoked and its tokens are refused until the file has keys again",
			"issuer", s.label, "kind", s.kind, "path", s.path, "reason", why)
		return
	}
	s.p.log.Info("keys: key file reloaded", "issuer", s.label, "kind", s.kind, "path", s.path, "keys", st.set.Len())
}

func (s *staticSource) describeAll(sk []skippedKey) string {
	out := make([]string, len(sk))
	for i, k := range sk {
		out[i] = s.describe(k)
	}
	return strings.Join(out, "; ")
}

// readKeyFile reads a key or bundle file of at most MaxBodyBytes. Only a
// regular file will do: a FIFO or device could block a lookup for ever.
func (p *Plane) readKeyFile(path string) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, errors.New("not a regular file")
	}
	limit := p.cfg.MaxBodyBytes
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(data)) > limit {
		return nil, nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, fi, nil
}

func (s *staticSource) read(now time.Time) (*staticState, error) {
	data, fi, err := s.p.readKeyFile(s.path)
	if err != nil {
		return nil, err
	}
	st, err := s.parse(data, now)
	if err != nil {
		return nil, err
	}
	st.info = fi
	return st, nil
}

// parse checks key material from configuration. The error is for material
// that is never used: not whole in its format, or holding a private key,
// which is a load error rather than a skipped key because whoever wrote it
// has just leaked it. Keys that cannot verify are left out and listed in
// st.skipped; refuseAtLoad decides whether the policy may load them.
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
		st.set, st.skipped = set, skipped
	case kindPEMFile:
		set, expires, skipped, err := parsePEM(data, now)
		if err != nil {
			return nil, err
		}
		st.set, st.expires, st.skipped = set, expires, skipped
		if !expires.IsZero() {
			st.errExpired = &unavailableError{label: s.label, retryAfter: s.p.cfg.FilePollInterval,
				cause: fmt.Errorf("pem_file %s: certificate expired at %s", s.path, expires.UTC().Format(time.RFC3339))}
		}
	case kindHMACFile:
		st.set, st.skipped = parseHMACSecret(data)
		if st.set.Len() > 0 && bytes.HasSuffix(data, []byte("\n")) {
			s.p.log.Warn("keys: HMAC secret file ends with a newline, which is part of the secret",
				"issuer", s.label, "path", s.path)
		}
	}
	return st, nil
}

// parseHMACSecret takes the file's bytes, exactly, as the secret. An empty
// file holds no secret; a secret too short or that is really a key is
// skipped.
func parseHMACSecret(data []byte) (*Set, []skippedKey) {
	skip := func(reason, detail string) (*Set, []skippedKey) {
		return NewSet(nil), []skippedKey{{Reason: reason, Detail: detail}}
	}
	if len(data) == 0 {
		return NewSet(nil), nil
	}
	if len(data) < minHMACSecret {
		return skip(skipShort, fmt.Sprintf("secret is %d bytes, at least %d required", len(data), minHMACSecret))
	}
	// A public key used as an HMAC secret is the classic algorithm
	// confusion attack: anyone holding the public key can sign.
	trimmed := bytes.TrimSpace(data)
	if bytes.Contains(data, []byte("-----BEGIN ")) {
		return skip(skipKeyType, "holds PEM data; hmac_secret_file takes the raw shared secret, never a key or certificate")
	}
	if isDERKey(data) {
		return skip(skipKeyType, "holds a DER public key or certificate; hmac_secret_file takes the raw shared secret")
	}
	if json.Valid(trimmed) && bytes.HasPrefix(trimmed, []byte("{")) {
		return skip(skipKeyType, "holds JSON (a JWK?); hmac_secret_file takes the raw shared secret")
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
