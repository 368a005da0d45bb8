package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"

	"github.com/extauthz/extauthz/test/spire"
)

// svidBundle is a SPIFFE bundle document: keys plus optional members.
func svidBundle(t testing.TB, hint int, keys ...map[string]any) []byte {
	t.Helper()
	if keys == nil {
		keys = []map[string]any{}
	}
	doc := map[string]any{"keys": keys, "spiffe_sequence": 1}
	if hint > 0 {
		doc["spiffe_refresh_hint"] = hint
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// svidKey is a JWT authority entry of a SPIFFE bundle.
func svidKey(t testing.TB, priv *ecdsa.PrivateKey, kid string) map[string]any {
	return jwkOf(t, priv, kid, map[string]any{"use": "jwt-svid"})
}

// x509Authority is an x509-svid entry of a SPIFFE bundle.
func x509Authority(cert *x509.Certificate) map[string]any {
	return map[string]any{"use": "x509-svid", "kty": "EC", "crv": "P-256",
		"x5c": []string{base64.StdEncoding.EncodeToString(cert.Raw)}}
}

// newSPIFFE builds a spiffe source on p, failing t on error.
func newSPIFFE(t *testing.T, p *Plane, spec Spec, s SPIFFESpec) Source {
	t.Helper()
	src, err := p.spiffeSource(spec, s)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestSPIFFESpecErrors(t *testing.T) {
	p, _, _ := testPlane(t, Config{})
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.json", []byte(`[{"keys":[]}]`))
	ca := writeFile(t, dir, "ca.pem", []byte("no pem here"))
	for _, tc := range []struct {
		name string
		spec Spec
		s    SPIFFESpec
		want string
	}{
		{"no trust domain", Spec{}, SPIFFESpec{WorkloadAPISocket: "unix:///x"}, "trust_domain"},
		{"bad trust domain", Spec{}, SPIFFESpec{TrustDomain: "Not A Domain", WorkloadAPISocket: "unix:///x"}, "trust_domain"},
		{"trust domain as ID", Spec{}, SPIFFESpec{TrustDomain: "spiffe://example.org", WorkloadAPISocket: "unix:///x"}, "trust_domain"},
		{"no source", Spec{}, SPIFFESpec{TrustDomain: "example.org"}, "exactly one"},
		{"two sources", Spec{}, SPIFFESpec{TrustDomain: "example.org", WorkloadAPISocket: "unix:///x", BundleFile: "/x"}, "exactly one"},
		{"bad socket", Spec{}, SPIFFESpec{TrustDomain: "example.org", WorkloadAPISocket: "http://x"}, "workload_api_socket"},
		{"relative socket", Spec{}, SPIFFESpec{TrustDomain: "example.org", WorkloadAPISocket: "unix:agent.sock"}, "workload_api_socket"},
		{"id without url", Spec{}, SPIFFESpec{TrustDomain: "example.org", BundleFile: "/x", BundleEndpointSPIFFEID: "spiffe://example.org/s"}, "needs bundle_endpoint.url"},
		{"ca_file with socket", Spec{CAFile: ca}, SPIFFESpec{TrustDomain: "example.org", WorkloadAPISocket: "unix:///x"}, "ca_file applies only"},
		{"http endpoint", Spec{}, SPIFFESpec{TrustDomain: "example.org", BundleEndpointURL: "http://bundles.example.org/b"}, "http:// is allowed only"},
		{"web ca_file without pem", Spec{CAFile: ca}, SPIFFESpec{TrustDomain: "example.org", BundleEndpointURL: "https://b.example.org"}, "no PEM"},
		{"spiffe profile over http", Spec{}, SPIFFESpec{TrustDomain: "example.org", BundleEndpointURL: "http://127.0.0.1:1/", BundleEndpointSPIFFEID: "spiffe://example.org/s"}, "needs https"},
		{"spiffe profile bad id", Spec{}, SPIFFESpec{TrustDomain: "example.org", BundleEndpointURL: "https://b.example.org", BundleEndpointSPIFFEID: "example.org/s"}, "spiffe_id"},
		{"spiffe profile without roots", Spec{}, SPIFFESpec{TrustDomain: "example.org", BundleEndpointURL: "https://b.example.org", BundleEndpointSPIFFEID: "spiffe://example.org/s"}, "needs ca_file"},
		{"malformed bundle file", Spec{}, SPIFFESpec{TrustDomain: "example.org", BundleFile: bad}, "not a SPIFFE bundle"},
		{"bundle file is a directory", Spec{}, SPIFFESpec{TrustDomain: "example.org", BundleFile: dir}, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Name = "mesh"
			_, err := p.spiffeSource(tc.spec, tc.s)
			wantErrContains(t, err, "keys: issuer mesh: spiffe: ", tc.want)
		})
	}
}

// realPlane is a plane on the real clock, for sources whose goroutines wait
// on reconnect backoff.
func realPlane(t *testing.T) *Plane {
	t.Helper()
	p, err := NewPlane(Config{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// eventually polls f until it returns nil, for at most 10s: the Workload API
// pushes asynchronously.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after 10s", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func wantKey(src Source, kid string, priv *ecdsa.PrivateKey) func() error {
	return func() error {
		ks, err := src.Keys(context.Background(), kid)
		if err != nil {
			return err
		}
		if !ks[0].Public.(*ecdsa.PublicKey).Equal(&priv.PublicKey) {
			return errors.New("wrong key")
		}
		return nil
	}
}

func wantLookupErr(src Source, kid string, target error) func() error {
	return func() error {
		_, err := src.Keys(context.Background(), kid)
		if !errors.Is(err, target) {
			return errors.New("got " + errString(err))
		}
		return nil
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// TestSPIFFESupersededWatcherStops: a reload that gives the issuer another
// source stops its watcher; a policy still holding the old source starts it
// again on its next lookup.
func TestSPIFFESupersededWatcherStops(t *testing.T) {
	p, clk, _ := testPlane(t, Config{})
	a := ecKey()
	dir := t.TempDir()
	path := writeFile(t, dir, "bundle.json", svidBundle(t, 0, svidKey(t, a, "a")))
	src := newSPIFFE(t, p, Spec{Name: "mesh"}, SPIFFESpec{TrustDomain: "example.org", BundleFile: path})
	r := src.(*spiffeSource).r.Load()

	other := writeFile(t, dir, "other.json", svidBundle(t, 0, svidKey(t, a, "a")))
	newSPIFFE(t, p, Spec{Name: "mesh"}, SPIFFESpec{TrustDomain: "example.org", BundleFile: other})
	clk.Add(spiffeSweep)
	if !r.stopped.Load() {
		t.Fatal("the superseded watcher still runs")
	}
	checkSigns(t, mustKeys(t, src, "a")[0], a, "ES256")
	if src.(*spiffeSource).r.Load() == r {
		t.Fatal("the old policy's lookup did not restart its watcher")
	}
}

// TestSPIFFEWithRealSPIRE checks the source against a real SPIRE agent and
// its real JWT-SVIDs: through the Workload API and through a bundle file
// written from `spire-server bundle show -format spiffe`, across an agent
// restart and a rotation of SPIRE's JWT signing key. The rotated key can
// reach the Workload API source only through the stream it re-established
// after the restart.
func TestSPIFFEWithRealSPIRE(t *testing.T) {
	s := spire.Start(t)
	p := realPlane(t)
	ctx := t.Context()
	const aud = "api.example.com"
	wl := newSPIFFE(t, p, Spec{Name: "mesh"}, SPIFFESpec{TrustDomain: spire.TrustDomain, WorkloadAPISocket: s.WorkloadAPIAddr()})
	bundlePath := filepath.Join(t.TempDir(), "bundle.json")
	writeBundle := func() {
		tmp := bundlePath + ".tmp"
		if err := os.WriteFile(tmp, s.Bundle(t), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, bundlePath); err != nil {
			t.Fatal(err)
		}
	}
	writeBundle()
	file := newSPIFFE(t, p, Spec{Name: "mesh-file"}, SPIFFESpec{TrustDomain: spire.TrustDomain, BundleFile: bundlePath})

	// verify checks token's signature, audience and expiry with the keys
	// src gives for its kid, using go-spiffe's own JWT-SVID validation.
	verify := func(src Source, token string) func() error {
		return func() error {
			kid := spire.KeyID(t, token)
			ks, err := src.Keys(ctx, kid)
			if err != nil {
				return err
			}
			td := spiffeid.RequireTrustDomainFromString(spire.TrustDomain)
			_, err = jwtsvid.ParseAndValidate(token, jwtbundle.FromJWTAuthorities(td, map[string]crypto.PublicKey{kid: ks[0].Public}), []string{aud})
			return err
		}
	}
	svid := s.FetchJWTSVID(t, aud)
	eventually(t, "Workload API source verifies a real JWT-SVID", verify(wl, svid))
	eventually(t, "bundle file source verifies a real JWT-SVID", verify(file, svid))

	s.StopAgent(t)
	if err := verify(wl, svid)(); err != nil {
		t.Fatalf("while the agent is down, the last bundle is not served: %v", err)
	}
	s.StartAgent(t)

	_, newKID := s.RotateJWTKey(t, func(newKID string) {
		eventually(t, "the prepared key reaches the Workload API source", func() error {
			_, err := wl.Keys(ctx, newKID)
			return err
		})
		writeBundle()
	})
	var rotated string
	eventually(t, "an SVID signed by the new key", func() error {
		rotated = s.FetchJWTSVID(t, aud)
		if spire.KeyID(t, rotated) != newKID {
			return errors.New("still signed by the old key")
		}
		return nil
	})
	eventually(t, "Workload API source verifies the rotated SVID", verify(wl, rotated))
	eventually(t, "bundle file source verifies the rotated SVID", verify(file, rotated))
	eventually(t, "the old key still verifies until revoked", verify(wl, svid))
}
