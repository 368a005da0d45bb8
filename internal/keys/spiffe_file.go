package keys

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// recheckFile re-reads the bundle file if it changed, at most once per
// FilePollInterval. A file that cannot be parsed (spiffe-helper halfway
// through writing it) keeps the last bundle; a parsed one without keys
// revokes them all.
func (r *spiffeRunner) recheckFile(now time.Time) {
	seen := func() os.FileInfo {
		if old := r.cur.Load(); old != nil {
			return old.info
		}
		return nil
	}
	r.watch.look(now, r.p.cfg.FilePollInterval, r.conf.key.location, seen, func() { r.rereadFile(now) })
}

func (r *spiffeRunner) rereadFile(now time.Time) {
	old := r.cur.Load()
	st, err := r.p.readBundleFile(r.conf.key.location, r.conf.td, now)
	if err != nil {
		fe := &fetchError{outcome: outcomeInvalid, url: r.conf.key.location, err: err}
		r.mu.Lock()
		repeated := r.lastErr != nil && r.lastErr.Error() == fe.Error()
		if repeated {
			r.lastErrAt = now
		}
		r.mu.Unlock()
		if repeated {
			// Logged and counted once, as for a key file: a file that
			// stays broken would otherwise do both at every poll.
			return
		}
		r.fail(fe, now)
		if !errors.Is(err, os.ErrNotExist) || old != nil {
			r.p.log.Error("keys: reading the SPIFFE bundle file failed; keeping the last bundle",
				"issuer", r.conf.key.label, "path", r.conf.key.location, "error", err)
		}
		return
	}
	if old != nil && st.sum == old.sum {
		cp := *old
		cp.info = st.info
		r.cur.Store(&cp)
		return
	}
	r.publish(st)
}

func (p *Plane) readBundleFile(path string, td spiffeid.TrustDomain, now time.Time) (*spiffeState, error) {
	data, fi, err := p.readKeyFile(path)
	if err != nil {
		return nil, err
	}
	doc, err := parseBundleFile(data, td)
	if err != nil {
		return nil, err
	}
	return &spiffeState{set: doc.set, skipped: doc.skipped, loadedAt: now, info: fi, sum: sha256.Sum256(data)}, nil
}

// parseBundleFile reads a bundle file in any of the forms operators have:
// a SPIFFE bundle (`spire-server bundle show -format spiffe`), a plain JWK
// Set, or the file spiffe-helper writes for jwt_bundle_file_name — a JSON
// object from trust domain name to the base64 of that trust domain's JWK
// Set, for every trust domain the agent knows. In the last form a trust
// domain missing from the file has no keys, as in a Workload API update.
func parseBundleFile(data []byte, td spiffeid.TrustDomain) (*spiffeBundle, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("not a SPIFFE bundle, JWK Set or spiffe-helper JWT bundle file: %w", err)
	}
	if _, ok := top["keys"]; ok {
		return parseSPIFFEBundle(data)
	}
	var helper map[string]string
	if err := json.Unmarshal(data, &helper); err != nil {
		return nil, errors.New(`not a SPIFFE bundle, JWK Set or spiffe-helper JWT bundle file: no "keys" array, and not an object of base64 strings`)
	}
	// Every entry is checked, not only ours, so that a file of some other
	// shape is not mistaken for a bundle set without our trust domain.
	out := &spiffeBundle{set: NewSet(nil)}
	for name, enc := range helper {
		other, err := spiffeid.TrustDomainFromString(name)
		if err != nil {
			return nil, fmt.Errorf("spiffe-helper JWT bundle file: %q is not a trust domain", name)
		}
		jwks, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return nil, fmt.Errorf("spiffe-helper JWT bundle of %s: %w", name, err)
		}
		if other != td {
			continue
		}
		if out, err = parseSPIFFEBundle(jwks); err != nil {
			return nil, fmt.Errorf("spiffe-helper JWT bundle of %s: %w", name, err)
		}
	}
	return out, nil
}
