package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/jws"
	"github.com/extauthz/extauthz/internal/keys"
)

// The test file format; docs/policy.md ("Testing policies") is its reference.
type testFile struct {
	Policy pathList          `yaml:"policy"`
	Keys   map[string]string `yaml:"keys"`
	// IssuerKeys names, by issuer, the keys of Keys whose public halves
	// the issuer verifies with instead of its own source, so an issuer
	// whose keys are fetched (jwks_uri, discovery, spiffe) is tested
	// without the network and the policy unchanged.
	IssuerKeys map[string]pathList `yaml:"issuer_keys"`
	Now        string              `yaml:"now"`
	Audit      bool                `yaml:"audit"`
	Tests      []testCase          `yaml:"tests"`
}

type testCase struct {
	Name    string      `yaml:"name"`
	Request testRequest `yaml:"request"`
	Token   *testToken  `yaml:"token"`
	// Grant is an RFC 7523 §2.1 authorization grant, sent as the
	// assertion parameter (testgrant.go).
	Grant  *testToken `yaml:"grant"`
	DPoP   *testProof `yaml:"dpop"`
	Expect testExpect `yaml:"expect"`
}

type testRequest struct {
	Method            string            `yaml:"method"`
	Host              string            `yaml:"host"`
	Path              string            `yaml:"path"`
	Headers           map[string]string `yaml:"headers"`
	ContextExtensions map[string]string `yaml:"context_extensions"`
	Form              map[string]string `yaml:"form"`
	Body              *string           `yaml:"body"`
	EncodeRawHeaders  bool              `yaml:"encode_raw_headers"`
	PackAsBytes       bool              `yaml:"pack_as_bytes"`
	// Scheme is :scheme, "https" unless given.
	Scheme string `yaml:"scheme"`
	// PeerCertificate is a PEM file, sent as Envoy's
	// attributes.source.certificate (include_peer_certificate: true).
	PeerCertificate string `yaml:"peer_certificate"`
}

type testToken struct {
	As      string         `yaml:"as"`
	Key     string         `yaml:"key"`
	Alg     string         `yaml:"alg"`
	Header  map[string]any `yaml:"header"`
	Claims  map[string]any `yaml:"claims"`
	Payload *string        `yaml:"payload"`
	Literal string         `yaml:"literal"`
}

// testProof is a DPoP proof (RFC 9449) for the test's request, sent in the
// DPoP header. The runner fills in a correct proof; header and claims
// override its members (null deletes one).
type testProof struct {
	Key    string         `yaml:"key"`
	Alg    string         `yaml:"alg"`
	Header map[string]any `yaml:"header"`
	Claims map[string]any `yaml:"claims"`
}

type testExpect struct {
	Decision        string            `yaml:"decision"`
	Status          int               `yaml:"status"`
	GRPCCode        string            `yaml:"grpc_code"`
	Reason          *string           `yaml:"reason"`
	Rule            *string           `yaml:"rule"`
	Issuer          *string           `yaml:"issuer"`
	ClientID        *string           `yaml:"client_id"`
	SpiffeID        *string           `yaml:"spiffe_id"`
	AuditDecision   *string           `yaml:"audit_decision"`
	Headers         map[string]string `yaml:"headers"`
	Removed         []string          `yaml:"removed"`
	WWWAuthenticate *string           `yaml:"www_authenticate"`
	ResponseHeaders map[string]string `yaml:"response_headers"`
	Body            *string           `yaml:"body"`
	// Metadata are members of dynamic_metadata beside the fixed ones
	// (testgrant.go); null expects a member to be absent.
	Metadata map[string]any `yaml:"metadata"`
}

// pathList is a YAML string or list of strings: paths, or key names.
type pathList []string

func (p *pathList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*p = pathList{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*p = l
	return nil
}

// testCmd runs policy test files, like `opa test`: every test is a request
// answered by an in-process server for the file's policy, compared with its
// expectations. Exit 0 when all pass, 1 when any fails, 2 on file errors.
func testCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("test", stderr)
	run := fs.String("run", "", "run only tests whose name matches this regular expression")
	verbose := fs.Bool("v", false, "print the decision steps of passing tests too (failing tests always print them)")
	format := fs.String("format", "text", "output: text, json, or junit (JUnit XML); with json and junit the summary goes to stderr")
	nowFlag := fs.String("now", "", "the clock of every file, RFC 3339 (overrides each file's now:)")
	if err := parseFlags(fs, args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: extauthz test [-run REGEXP] [-v] [--format text|json|junit] [--now RFC3339] PATH...  (test files, or directories holding *_test.yaml)")
		return 2
	}
	filter, err := regexp.Compile(*run)
	if err != nil {
		fmt.Fprintln(stderr, "extauthz test: -run:", err)
		return 2
	}
	rep, err := newReporter(*format, *verbose)
	if err != nil {
		fmt.Fprintln(stderr, "extauthz test: --format:", err)
		return 2
	}
	var now time.Time
	if *nowFlag != "" {
		if now, err = time.Parse(time.RFC3339, *nowFlag); err != nil {
			fmt.Fprintln(stderr, "extauthz test: --now:", err)
			return 2
		}
	}
	files, err := testFiles(fs.Args())
	if err != nil {
		fmt.Fprintln(stderr, "extauthz test:", err)
		return 2
	}
	r := &testRunner{filter: filter, now: now, coverage: map[string]*coverage{}}
	broken := false
	for _, name := range files {
		fr := r.runFile(ctx, name)
		if fr.Error != "" {
			fmt.Fprintf(stderr, "ERROR %s: %s\n", name, fr.Error)
			broken = true
		}
		rep.file(stdout, fr)
	}
	summary := stdout
	if rep.format != "text" {
		summary = stderr
	}
	if err := rep.end(stdout, summary, r); err != nil {
		fmt.Fprintln(stderr, "extauthz test:", err)
		return 2
	}
	switch {
	case broken:
		return 2
	case r.failed > 0:
		return 1
	}
	return 0
}

// testFiles expands paths: a file as given, a directory to every
// *_test.yaml and *_test.yml below it, in lexical order.
func testFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(name string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(name, "_test.yaml") || strings.HasSuffix(name, "_test.yml")) {
				found = append(found, name)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no *_test.yaml files", p)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

type testRunner struct {
	filter *regexp.Regexp
	// now, unless zero, is every file's clock (--now).
	now            time.Time
	passed, failed int
	files          []*fileResult
	// coverage is by policy hash, so files testing one policy add up.
	coverage map[string]*coverage
	policies []*coverage // in the order first seen
}

// fileResult is what one test file's run found.
type fileResult struct {
	File string `json:"file"`
	// Error is why the file could not run; its tests then did not.
	Error string       `json:"error,omitempty"`
	Tests []testResult `json:"tests"`
	// Policy is the coverage line's name of the file's policy.
	Policy  string  `json:"policy,omitempty"`
	Seconds float64 `json:"seconds"`
	cov     *coverage
}

// testResult is one test's outcome.
type testResult struct {
	Name     string `json:"name"`
	Passed   bool   `json:"passed"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	Rule     string `json:"rule,omitempty"`
	// Diffs are how the answer differs from the expectations.
	Diffs   []string     `json:"diffs,omitempty"`
	Steps   []check.Step `json:"steps,omitempty"`
	Seconds float64      `json:"seconds"`
}

// runFile runs one test file against a fresh server, so the replay store is
// shared by the file's tests (in order) and by no other file.
func (r *testRunner) runFile(ctx context.Context, name string) *fileResult {
	start := time.Now()
	fr := &fileResult{File: name, Tests: []testResult{}}
	r.files = append(r.files, fr)
	if err := r.run(ctx, name, fr); err != nil {
		fr.Error = err.Error()
		fr.Tests = []testResult{}
	}
	fr.Seconds = time.Since(start).Seconds()
	return fr
}

func (r *testRunner) run(ctx context.Context, name string, fr *fileResult) error {
	tf, err := readTestFile(name)
	if err != nil {
		return err
	}
	dir := filepath.Dir(name)
	// The clock: --now, else the file's now:, else the time it starts.
	now := r.now
	switch {
	case !now.IsZero():
	case tf.Now != "":
		if now, err = time.Parse(time.RFC3339, tf.Now); err != nil {
			return fmt.Errorf("now: %w", err)
		}
	default:
		now = time.Now().UTC().Truncate(time.Second)
	}
	signers := map[string]*signer{}
	for _, k := range slices.Sorted(maps.Keys(tf.Keys)) {
		if signers[k], err = readSigner(rel(dir, tf.Keys[k])); err != nil {
			return fmt.Errorf("keys[%q]: %w", k, err)
		}
	}
	issuerKeys := map[string]keys.Spec{}
	for _, is := range slices.Sorted(maps.Keys(tf.IssuerKeys)) {
		if issuerKeys[is], err = keySpec(signers, tf.Keys, dir, tf.IssuerKeys[is]); err != nil {
			return fmt.Errorf("issuer_keys[%q]: %w", is, err)
		}
	}
	policies := make([]string, len(tf.Policy))
	for i, p := range tf.Policy {
		policies[i] = rel(dir, p)
	}
	srv, err := newEvalServer(ctx, evalConfig{
		Policies:   policies,
		Now:        func() time.Time { return now },
		IssuerKeys: issuerKeys,
		Check:      check.Config{Audit: tf.Audit},
	})
	if ike := (*issuerKeysError)(nil); errors.As(err, &ike) {
		return fmt.Errorf("issuer_keys[%q]: %w", ike.Issuer, ike.Err)
	}
	if err != nil {
		return err
	}
	defer srv.Close()
	// The nonce the server issues is known before any request is sent:
	// the clock stands still.
	b := &build{dir: dir, signers: signers, now: now, nonce: srv.Nonces.Current()}
	// Build every request first: a broken test is a file error, not a failure.
	reqs := make([]*authv3.CheckRequest, len(tf.Tests))
	wants := make([]testExpect, len(tf.Tests))
	for i, tc := range tf.Tests {
		if reqs[i], err = b.request(tc); err == nil {
			wants[i], err = b.expectation(tc.Expect)
		}
		if err != nil {
			return fmt.Errorf("tests[%d] %q: %w", i, tc.Name, err)
		}
	}
	cov := r.coverageOf(srv.Snapshot, policies)
	fr.Policy, fr.cov = cov.name, cov
	for i, tc := range tf.Tests {
		if !r.filter.MatchString(tc.Name) {
			continue
		}
		start := time.Now()
		resp, steps := srv.Explain(ctx, reqs[i])
		md := resp.GetDynamicMetadata().GetFields()
		res := testResult{
			Name:     tc.Name,
			Decision: md["decision"].GetStringValue(),
			Reason:   md["reason"].GetStringValue(),
			Rule:     md["rule"].GetStringValue(),
			Diffs:    compare(wants[i], resp),
			Steps:    steps,
			Seconds:  time.Since(start).Seconds(),
		}
		res.Passed = len(res.Diffs) == 0
		if res.Passed {
			r.passed++
		} else {
			r.failed++
		}
		cov.record(res.Rule, steps)
		fr.Tests = append(fr.Tests, res)
	}
	return nil
}

func readTestFile(name string) (*testFile, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	tf := &testFile{}
	if err := dec.Decode(tf); err != nil {
		return nil, err
	}
	switch {
	case len(tf.Policy) == 0:
		return nil, errors.New("policy: required (files or directories, relative to the test file)")
	case len(tf.Tests) == 0:
		return nil, errors.New("tests: at least one test is required")
	}
	for i, tc := range tf.Tests {
		switch {
		case tc.Name == "":
			return nil, fmt.Errorf("tests[%d].name: required", i)
		case tc.Expect.Decision != "allow" && tc.Expect.Decision != "deny":
			return nil, fmt.Errorf("tests[%d] %q: expect.decision: must be allow or deny", i, tc.Name)
		}
	}
	return tf, nil
}

// rel resolves p against the test file's directory.
func rel(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// build holds what a file's requests are built from.
type build struct {
	dir     string // the test file's directory, for relative paths
	signers map[string]*signer
	now     time.Time
	// nonce is the server's current DPoP nonce, {{nonce}} in a test: the
	// clock stands still, so it is the one the server sends in DPoP-Nonce.
	nonce string
}

// envoyPEM percent-encodes a PEM certificate as Envoy encodes
// attributes.source.certificate (urlEncodedPemEncodedPeerCertificate).
var envoyPEM = strings.NewReplacer("\n", "%0A", " ", "%20", "+", "%2B", "/", "%2F", "=", "%3D")

// request turns a test's request, token and DPoP proof into what Envoy sends.
func (b *build) request(tc testCase) (*authv3.CheckRequest, error) {
	rq := tc.Request
	tok, err := b.token(tc.Token)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	as := ""
	if tc.Token != nil {
		as = tc.Token.As
		switch as {
		case "bearer", "dpop", "client_assertion", "none":
		default:
			return nil, fmt.Errorf("token.as: want client_assertion, bearer, dpop or none, got %q", as)
		}
	}
	proof := ""
	sub := func(s string) string {
		return strings.NewReplacer("{{token}}", tok, "{{dpop}}", proof, "{{nonce}}", b.nonce).Replace(s)
	}
	form := map[string]string{}
	for k, v := range rq.Form {
		form[k] = sub(v)
	}
	if err := b.grant(tc.Grant, rq.Body != nil, form); err != nil {
		return nil, fmt.Errorf("grant: %w", err)
	}
	if as == "client_assertion" {
		if rq.Body != nil {
			return nil, errors.New("token.as client_assertion adds form parameters; with a raw body use as: none and {{token}}")
		}
		form["client_assertion"] = tok
		if _, ok := form["client_assertion_type"]; !ok {
			form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
		}
	}
	var body string
	switch {
	case rq.Body != nil && len(form) > 0:
		return nil, errors.New("request: give form or body, not both")
	case rq.Body != nil:
		body = sub(*rq.Body)
	case len(form) > 0:
		vals := url.Values{}
		for k, v := range form {
			vals.Set(k, v)
		}
		body = vals.Encode()
	}
	method, path := rq.Method, sub(rq.Path)
	if method == "" {
		method = "GET"
		if body != "" {
			method = "POST"
		}
	}
	if path == "" {
		path = "/"
	}
	scheme := cmp.Or(rq.Scheme, "https")
	if tc.DPoP != nil {
		// ath binds an access token (RFC 9449 §4.2); a client assertion
		// beside a proof is none.
		accessToken := ""
		if as == "dpop" {
			accessToken = tok
		}
		if proof, err = b.proof(tc.DPoP, method, scheme+"://"+rq.Host+strings.SplitN(path, "?", 2)[0], accessToken); err != nil {
			return nil, fmt.Errorf("dpop: %w", err)
		}
	}
	headers := map[string]string{}
	for k, v := range rq.Headers {
		headers[strings.ToLower(k)] = sub(v)
	}
	if _, ok := headers["content-type"]; !ok && rq.Body == nil && len(form) > 0 {
		headers["content-type"] = "application/x-www-form-urlencoded"
	}
	if as == "bearer" || as == "dpop" {
		if _, ok := headers["authorization"]; ok {
			return nil, fmt.Errorf("token.as %s sets authorization; use as: none and {{token}} in headers for more", as)
		}
		authScheme := "Bearer "
		if as == "dpop" {
			authScheme = "DPoP "
		}
		headers["authorization"] = authScheme + tok
	}
	if _, ok := headers["dpop"]; !ok && proof != "" {
		headers["dpop"] = proof
	}
	h := &authv3.AttributeContext_HttpRequest{Method: method, Host: rq.Host, Path: path, Scheme: scheme}
	if rq.EncodeRawHeaders {
		hm := &corev3.HeaderMap{}
		for _, k := range slices.Sorted(maps.Keys(headers)) {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(headers[k])})
		}
		h.HeaderMap = hm
	} else {
		h.Headers = headers
	}
	if rq.PackAsBytes {
		h.RawBody = []byte(body)
	} else {
		h.Body = body
	}
	attrs := &authv3.AttributeContext{
		Request:           &authv3.AttributeContext_Request{Http: h},
		ContextExtensions: rq.ContextExtensions,
	}
	if rq.PeerCertificate != "" {
		pemBytes, err := os.ReadFile(rel(b.dir, rq.PeerCertificate))
		if err != nil {
			return nil, fmt.Errorf("request.peer_certificate: %w", err)
		}
		attrs.Source = &authv3.AttributeContext_Peer{Certificate: envoyPEM.Replace(string(pemBytes))}
	}
	return &authv3.CheckRequest{Attributes: attrs}, nil
}

// signer is a test key: a private key (JWK or PEM) or an HMAC secret.
type signer struct {
	key any // as jws.Signature takes it
	pub crypto.PublicKey
	kid string
	alg string // the key's own alg, or the usual one for its type
	// jwkAlg is the JWK's own alg member, "" when it has none.
	jwkAlg string
	// rawSecret says the file's bytes are the secret (not a JWK).
	rawSecret bool
}

// readSigner reads a private JWK, a PEM private key, or (anything else) the
// bytes of an HMAC secret, exactly as hmac_secret_file reads them.
func readSigner(name string) (*signer, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(data)
	isJWK := bytes.HasPrefix(trimmed, []byte("{"))
	if !isJWK && !bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		return &signer{key: data, alg: "HS256", rawSecret: true}, nil
	}
	k, err := jwk.ParseKey(data, jwk.WithPEM(!isJWK))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if private, err := jwk.IsPrivateKey(k); err == nil && !private {
		return nil, fmt.Errorf("%s: a public key cannot sign; give the private key", name)
	}
	s := &signer{}
	s.kid, _ = k.KeyID()
	if err := jwk.Export(k, &s.key); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if cs, ok := s.key.(crypto.Signer); ok {
		s.pub = cs.Public()
	}
	if a, ok := k.Algorithm(); ok {
		s.alg, s.jwkAlg = a.String(), a.String()
	} else if ek, ok := k.(jwk.ECDSAPrivateKey); ok {
		crv, _ := ek.Crv()
		s.alg = map[string]string{"P-384": "ES384", "P-521": "ES512"}[crv.String()]
	}
	if s.alg == "" {
		s.alg = map[jwa.KeyType]string{jwa.RSA(): "RS256", jwa.OKP(): "EdDSA", jwa.OctetSeq(): "HS256", jwa.EC(): "ES256"}[k.KeyType()]
	}
	return s, nil
}

// keySpec is the key source an issuer_keys entry stands for: the public
// halves of the named keys as an inline JWK Set, each with the kid and alg
// its file gives, or one HMAC secret read as hmac_secret_file reads it.
// Either way the keys are checked as the policy's own would be.
func keySpec(signers map[string]*signer, files map[string]string, dir string, names []string) (keys.Spec, error) {
	if len(names) == 0 {
		return keys.Spec{}, errors.New("name at least one key of keys")
	}
	set := make([]map[string]any, 0, len(names))
	for _, name := range names {
		s := signers[name]
		switch {
		case s == nil:
			return keys.Spec{}, fmt.Errorf("no key named %q in the file's keys", name)
		case s.pub == nil && len(names) > 1:
			return keys.Spec{}, fmt.Errorf("key %q is a shared secret: an issuer verifies with one secret or with public keys, not both", name)
		case s.pub == nil && !s.rawSecret:
			return keys.Spec{}, fmt.Errorf("key %q is an oct JWK; give the secret as a file of its bytes, as hmac_secret_file reads it", name)
		case s.pub == nil:
			return keys.Spec{HMACSecretFile: rel(dir, files[name])}, nil
		}
		var m map[string]any
		k, err := jwk.Import(s.pub)
		if err == nil {
			var raw []byte
			if raw, err = json.Marshal(k); err == nil {
				err = json.Unmarshal(raw, &m)
			}
		}
		if err != nil {
			return keys.Spec{}, fmt.Errorf("key %q: %w", name, err)
		}
		if s.kid != "" {
			m["kid"] = s.kid
		}
		if s.jwkAlg != "" {
			m["alg"] = s.jwkAlg
		}
		set = append(set, m)
	}
	doc, err := json.Marshal(map[string]any{"keys": set})
	if err != nil {
		return keys.Spec{}, err
	}
	return keys.Spec{JWKS: doc}, nil
}

// signer finds a key of the file's keys by name.
func (b *build) signer(name string) (*signer, error) {
	s := b.signers[name]
	if s == nil {
		return nil, fmt.Errorf("no key named %q in the file's keys", name)
	}
	return s, nil
}

// publicJWK is a key's public half as a JWK: only the members RFC 7517
// requires (kty and the key's parameters), no kid or alg.
func (b *build) publicJWK(name string) (jwk.Key, error) {
	s, err := b.signer(name)
	if err != nil {
		return nil, err
	}
	if s.pub == nil {
		return nil, fmt.Errorf("key %q is a shared secret; it has no public key", name)
	}
	return jwk.Import(s.pub)
}

// token signs the token a test describes ("" when it has none).
func (b *build) token(t *testToken) (string, error) {
	if t == nil {
		return "", nil
	}
	if t.Literal != "" {
		if t.Key != "" || t.Claims != nil || t.Payload != nil || t.Header != nil {
			return "", errors.New("literal excludes key, header, claims and payload")
		}
		return t.Literal, nil
	}
	s, err := b.signer(t.Key)
	if err != nil {
		return "", fmt.Errorf("key: %w", err)
	}
	header := map[string]any{}
	if s.kid != "" {
		header["kid"] = s.kid
	}
	var payload []byte
	switch {
	case t.Payload != nil && t.Claims != nil:
		return "", errors.New("give claims or payload, not both")
	case t.Payload != nil:
		payload = []byte(*t.Payload)
	default:
		claims, err := b.claims(t.Claims, nil)
		if err != nil {
			return "", err
		}
		if payload, err = json.Marshal(claims); err != nil {
			return "", fmt.Errorf("claims: %w", err)
		}
	}
	return b.sign(t.Key, s, cmp.Or(t.Alg, s.alg), header, t.Header, payload)
}

// proof signs a DPoP proof for a request to htu by method: typ dpop+jwt,
// the key's alg and public jwk, a random jti, htm, htu, iat now, and ath
// when an access token is sent in the DPoP scheme; p's header and claims
// override these.
func (b *build) proof(p *testProof, method, htu, accessToken string) (string, error) {
	s, err := b.signer(p.Key)
	if err != nil {
		return "", fmt.Errorf("key: %w", err)
	}
	header := map[string]any{"typ": "dpop+jwt"}
	if _, given := p.Header["jwk"]; !given {
		if header["jwk"], err = b.publicJWK(p.Key); err != nil {
			return "", fmt.Errorf("key: %w", err)
		}
	}
	defaults := map[string]any{"jti": "random", "htm": method, "htu": htu, "iat": b.now.Unix()}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		defaults["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	claims, err := b.claims(p.Claims, defaults)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("claims: %w", err)
	}
	return b.sign(p.Key, s, cmp.Or(p.Alg, s.alg), header, p.Header, payload)
}

// sign makes a compact JWS of payload: header is the runner's, overrides
// the test's (a null member deletes one), alg is what it is signed with
// and, unless overridden, its alg member.
func (b *build) sign(name string, s *signer, alg string, header, overrides map[string]any, payload []byte) (string, error) {
	header["alg"] = alg
	for k, v := range overrides {
		if v == nil {
			delete(header, k)
			continue
		}
		x, err := b.expand(v)
		if err != nil {
			return "", fmt.Errorf("header.%s: %w", k, err)
		}
		header[k] = x
	}
	hdr, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("header: %w", err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(hdr) + "." + enc.EncodeToString(payload)
	sig, err := jws.Signature(alg, s.key, []byte(input))
	if err != nil {
		return "", fmt.Errorf("sign with key %q as %s: %w", name, alg, err)
	}
	return input + "." + enc.EncodeToString(sig), nil
}

// timeClaims take relative times: now, +2m, -1h, now+30s, or RFC 3339.
var timeClaims = map[string]bool{"exp": true, "nbf": true, "iat": true, "auth_time": true}

// claims resolves a test's claims over defaults: a null claim is left out,
// so `<<: *base` plus `jti: null` drops one claim of a shared set (or a
// default); time claims take relative times, jti: random is random, and
// every other value is expanded (see expand).
func (b *build) claims(in, defaults map[string]any) (map[string]any, error) {
	merged := maps.Clone(defaults)
	if merged == nil {
		merged = make(map[string]any, len(in))
	}
	for k, v := range in {
		merged[k] = v
	}
	out := make(map[string]any, len(merged))
	for k, v := range merged {
		s, isString := v.(string)
		t, isTime := v.(time.Time) // an unquoted RFC 3339 time in YAML
		switch {
		case v == nil:
		case isTime && timeClaims[k]:
			out[k] = t.Unix()
		case isString && timeClaims[k]:
			t, err := relativeTime(s, b.now)
			if err != nil {
				return nil, fmt.Errorf("claims.%s: %w", k, err)
			}
			out[k] = t.Unix()
		case isString && k == "jti" && s == "random":
			r := make([]byte, 16)
			rand.Read(r)
			out[k] = hex.EncodeToString(r)
		default:
			x, err := b.expand(v)
			if err != nil {
				return nil, fmt.Errorf("claims.%s: %w", k, err)
			}
			out[k] = x
		}
	}
	return out, nil
}

// function is a value the runner computes: jkt(KEY), jwk(KEY) or
// x5t#S256(FILE).
var function = regexp.MustCompile(`^(jkt|jwk|x5t#S256)\((.+)\)$`)

// expand computes a header or claim value, at any depth of objects and
// lists: jkt(KEY) is the RFC 7638 SHA-256 thumbprint of a key of the file
// (what cnf.jkt names), jwk(KEY) its public JWK, x5t#S256(FILE) the
// base64url SHA-256 of the DER of a PEM certificate (what cnf.x5t#S256
// names); {{nonce}} in a string is the server's current DPoP nonce.
func (b *build) expand(v any) (any, error) {
	switch v := v.(type) {
	case string:
		m := function.FindStringSubmatch(v)
		if m == nil {
			return strings.ReplaceAll(v, "{{nonce}}", b.nonce), nil
		}
		if m[1] == "x5t#S256" {
			x5t, err := certThumbprint(rel(b.dir, m[2]))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", v, err)
			}
			return x5t, nil
		}
		k, err := b.publicJWK(m[2])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", v, err)
		}
		if m[1] == "jwk" {
			return k, nil
		}
		sum, err := k.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", v, err)
		}
		return base64.RawURLEncoding.EncodeToString(sum), nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			x, err := b.expand(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = x
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			x, err := b.expand(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = x
		}
		return out, nil
	}
	return v, nil
}

// certThumbprint is RFC 8705's x5t#S256 of the first certificate in a PEM
// file.
func certThumbprint(name string) (string, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", fmt.Errorf("%s: no PEM CERTIFICATE", name)
	}
	sum := sha256.Sum256(block.Bytes)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

func relativeTime(s string, now time.Time) (time.Time, error) {
	rest, fromNow := strings.CutPrefix(s, "now")
	if fromNow && rest == "" {
		return now, nil
	}
	if rest != "" && (rest[0] == '+' || rest[0] == '-') {
		d, err := time.ParseDuration(rest)
		if err == nil {
			return now.Add(d), nil
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not now, a relative time (+2m, -1h, now+30s) or an RFC 3339 time", s)
}

// expectation expands the expected header values as claim values are
// (jkt(KEY), x5t#S256(FILE), {{nonce}}).
func (b *build) expectation(e testExpect) (testExpect, error) {
	expand := func(what string, m map[string]string) (map[string]string, error) {
		if m == nil {
			return nil, nil
		}
		out := make(map[string]string, len(m))
		for k, v := range m {
			x, err := b.expand(v)
			if err != nil {
				return nil, fmt.Errorf("expect.%s.%s: %w", what, k, err)
			}
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("expect.%s.%s: %s is not a header value", what, k, v)
			}
			out[k] = s
		}
		return out, nil
	}
	var err error
	if e.Headers, err = expand("headers", e.Headers); err != nil {
		return e, err
	}
	e.ResponseHeaders, err = expand("response_headers", e.ResponseHeaders)
	return e, err
}

// compare lists how resp differs from want.
func compare(want testExpect, resp *authv3.CheckResponse) []string {
	var diffs []string
	diff := func(what string, want, got any) {
		diffs = append(diffs, fmt.Sprintf("%s: want %q, got %q", what, want, got))
	}
	md := resp.GetDynamicMetadata().GetFields()
	field := func(name string, want *string) {
		if got := md[name].GetStringValue(); want != nil && *want != got {
			diff(name, *want, got)
		}
	}
	field("decision", &want.Decision)
	field("reason", want.Reason)
	field("rule", want.Rule)
	field("issuer", want.Issuer)
	field("client_id", want.ClientID)
	field("spiffe_id", want.SpiffeID)
	field("audit_decision", want.AuditDecision)
	if want.GRPCCode != "" {
		got := codes.Code(resp.GetStatus().GetCode()).String()
		norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }
		if norm(got) != norm(want.GRPCCode) {
			diff("grpc_code", want.GRPCCode, got)
		}
	}
	denied := resp.GetDeniedResponse()
	if want.Status != 0 && int(denied.GetStatus().GetCode()) != want.Status {
		diffs = append(diffs, fmt.Sprintf("status: want %d, got %d", want.Status, denied.GetStatus().GetCode()))
	}
	if want.Body != nil && denied.GetBody() != *want.Body {
		diff("body", *want.Body, denied.GetBody())
	}
	// The headers sent to the client: the deny's, or those an allow adds
	// to the upstream's response (DPoP-Nonce).
	respHeaders := headerMap(denied.GetHeaders())
	if ok := resp.GetOkResponse(); ok != nil {
		respHeaders = headerMap(ok.GetResponseHeadersToAdd())
	}
	if want.WWWAuthenticate != nil && respHeaders["www-authenticate"] != *want.WWWAuthenticate {
		diff("www_authenticate", *want.WWWAuthenticate, respHeaders["www-authenticate"])
	}
	for _, k := range slices.Sorted(maps.Keys(want.ResponseHeaders)) {
		if got, set := respHeaders[strings.ToLower(k)]; !matches(want.ResponseHeaders[k], got, set) {
			diff("response header "+k, want.ResponseHeaders[k], got)
		}
	}
	ok := resp.GetOkResponse()
	if want.Headers != nil {
		got := headerMap(ok.GetHeaders())
		for _, k := range slices.Sorted(maps.Keys(want.Headers)) {
			if g, set := got[strings.ToLower(k)]; !matches(want.Headers[k], g, set) {
				diff("header "+k, want.Headers[k], g)
			}
			delete(got, strings.ToLower(k))
		}
		for _, k := range slices.Sorted(maps.Keys(got)) {
			diffs = append(diffs, fmt.Sprintf("header %s: not expected, got %q", k, got[k]))
		}
	}
	diffs = append(diffs, compareMetadata(want.Metadata, md)...)
	for _, name := range want.Removed {
		if !slices.Contains(ok.GetHeadersToRemove(), strings.ToLower(name)) {
			diffs = append(diffs, fmt.Sprintf("removed: %q is not in headers_to_remove %q", name, ok.GetHeadersToRemove()))
		}
	}
	return diffs
}

// matches compares a header value with its expectation; "*" takes any value
// but requires the header to be there.
func matches(want, got string, set bool) bool {
	return set && (want == "*" || want == got)
}

func headerMap(hs []*corev3.HeaderValueOption) map[string]string {
	m := make(map[string]string, len(hs))
	for _, h := range hs {
		m[strings.ToLower(h.GetHeader().GetKey())] = h.GetHeader().GetValue()
	}
	return m
}
