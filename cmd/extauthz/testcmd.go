package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
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
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/replay"
)

// The test file format; docs/policy.md ("Testing policies") is its reference.
type testFile struct {
	Policy pathList          `yaml:"policy"`
	Keys   map[string]string `yaml:"keys"`
	Now    string            `yaml:"now"`
	Audit  bool              `yaml:"audit"`
	Tests  []testCase        `yaml:"tests"`
}

type testCase struct {
	Name    string      `yaml:"name"`
	Request testRequest `yaml:"request"`
	Token   *testToken  `yaml:"token"`
	Expect  testExpect  `yaml:"expect"`
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
}

// pathList is a YAML string or list of strings.
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
	if err := parseFlags(fs, args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: extauthz test [-run REGEXP] [-v] PATH...  (test files, or directories holding *_test.yaml)")
		return 2
	}
	filter, err := regexp.Compile(*run)
	if err != nil {
		fmt.Fprintln(stderr, "extauthz test: -run:", err)
		return 2
	}
	files, err := testFiles(fs.Args())
	if err != nil {
		fmt.Fprintln(stderr, "extauthz test:", err)
		return 2
	}
	r := &testRunner{out: stdout, filter: filter, verbose: *verbose}
	broken := false
	for _, name := range files {
		if err := r.runFile(ctx, name); err != nil {
			fmt.Fprintf(stderr, "ERROR %s: %v\n", name, err)
			broken = true
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", r.passed, r.failed)
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
	out            io.Writer
	filter         *regexp.Regexp
	verbose        bool
	passed, failed int
}

// runFile runs one test file against a fresh server, so the replay store is
// shared by the file's tests (in order) and by no other file.
func (r *testRunner) runFile(ctx context.Context, name string) error {
	tf, err := readTestFile(name)
	if err != nil {
		return err
	}
	dir := filepath.Dir(name)
	now := time.Now().UTC().Truncate(time.Second)
	if tf.Now != "" {
		if now, err = time.Parse(time.RFC3339, tf.Now); err != nil {
			return fmt.Errorf("now: %w", err)
		}
	}
	signers := map[string]*signer{}
	for _, k := range slices.Sorted(maps.Keys(tf.Keys)) {
		if signers[k], err = readSigner(rel(dir, tf.Keys[k])); err != nil {
			return fmt.Errorf("keys[%q]: %w", k, err)
		}
	}
	// Build every request first: a broken test is a file error, not a failure.
	reqs := make([]*authv3.CheckRequest, len(tf.Tests))
	for i, tc := range tf.Tests {
		if reqs[i], err = buildRequest(tc, signers, now); err != nil {
			return fmt.Errorf("tests[%d] %q: %w", i, tc.Name, err)
		}
	}
	policies := make([]string, len(tf.Policy))
	for i, p := range tf.Policy {
		policies[i] = rel(dir, p)
	}
	srv, closeSrv, err := testServer(policies, now, tf.Audit)
	if err != nil {
		return err
	}
	defer closeSrv()
	for i, tc := range tf.Tests {
		if !r.filter.MatchString(tc.Name) {
			continue
		}
		resp, steps := srv.Explain(ctx, reqs[i])
		diffs := compare(tc.Expect, resp)
		if len(diffs) == 0 {
			r.passed++
			fmt.Fprintf(r.out, "PASS %s: %s\n", name, tc.Name)
		} else {
			r.failed++
			fmt.Fprintf(r.out, "FAIL %s: %s: %s\n", name, tc.Name, strings.Join(diffs, "; "))
		}
		if len(diffs) > 0 || r.verbose {
			for _, s := range steps {
				mark := "ok  "
				if !s.OK {
					mark = "FAIL"
				}
				fmt.Fprintf(r.out, "    %s %s: %s\n", mark, s.Check, s.Detail)
			}
		}
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

// testServer builds the in-process server for one file, as offlineServer
// does, but on the file's fixed clock and without the network: remote key
// sources (jwks_uri, discovery) are unavailable, so their tokens get 503.
func testServer(policies []string, now time.Time, audit bool) (*check.Server, func(), error) {
	clock := func() time.Time { return now }
	plane, err := keys.NewPlane(keys.Config{Offline: true, Clock: fixedClock(now)})
	if err != nil {
		return nil, nil, err
	}
	snap, err := policy.Load(policies, policy.Options{Keys: plane, Now: clock})
	if err != nil {
		plane.Close()
		return nil, nil, err
	}
	srv := check.New(check.Config{
		Policy: policy.NewStore(snap),
		Replay: replay.NewMemory(replay.MemoryConfig{Clock: clock}),
		Audit:  audit,
		Now:    clock,
	})
	return srv, func() { plane.Close() }, nil
}

// fixedClock is a keys.Clock that stands still; timers use real time.
type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

func (fixedClock) AfterFunc(d time.Duration, f func()) keys.Timer { return time.AfterFunc(d, f) }

// buildRequest turns a test's request and token into what Envoy sends.
func buildRequest(tc testCase, signers map[string]*signer, now time.Time) (*authv3.CheckRequest, error) {
	rq := tc.Request
	tok, err := makeToken(tc.Token, signers, now)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	sub := func(s string) string { return strings.ReplaceAll(s, "{{token}}", tok) }
	headers := map[string]string{}
	for k, v := range rq.Headers {
		headers[strings.ToLower(k)] = sub(v)
	}
	form := map[string]string{}
	for k, v := range rq.Form {
		form[k] = sub(v)
	}
	if tc.Token != nil {
		switch tc.Token.As {
		case "bearer":
			if _, ok := headers["authorization"]; ok {
				return nil, errors.New("token.as bearer sets authorization; use as: none and {{token}} in headers for more")
			}
			headers["authorization"] = "Bearer " + tok
		case "client_assertion":
			if rq.Body != nil {
				return nil, errors.New("token.as client_assertion adds form parameters; with a raw body use as: none and {{token}}")
			}
			form["client_assertion"] = tok
			if _, ok := form["client_assertion_type"]; !ok {
				form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
			}
		case "none":
		default:
			return nil, fmt.Errorf("token.as: want client_assertion, bearer or none, got %q", tc.Token.As)
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
		if _, ok := headers["content-type"]; !ok {
			headers["content-type"] = "application/x-www-form-urlencoded"
		}
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
	h := &authv3.AttributeContext_HttpRequest{Method: method, Host: rq.Host, Path: path}
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
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request:           &authv3.AttributeContext_Request{Http: h},
		ContextExtensions: rq.ContextExtensions,
	}}, nil
}

// signer is a test key: a private key (JWK or PEM) or an HMAC secret.
type signer struct {
	key any // as jwsbb.Sign takes it
	kid string
	alg string // the key's own alg, or the usual one for its type
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
		return &signer{key: data, alg: "HS256"}, nil
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
	if a, ok := k.Algorithm(); ok {
		s.alg = a.String()
	} else if ek, ok := k.(jwk.ECDSAPrivateKey); ok {
		crv, _ := ek.Crv()
		s.alg = map[string]string{"P-384": "ES384", "P-521": "ES512"}[crv.String()]
	}
	if s.alg == "" {
		s.alg = map[jwa.KeyType]string{jwa.RSA(): "RS256", jwa.OKP(): "EdDSA", jwa.OctetSeq(): "HS256", jwa.EC(): "ES256"}[k.KeyType()]
	}
	return s, nil
}

// makeToken signs the token a test describes ("" when it has none).
func makeToken(t *testToken, signers map[string]*signer, now time.Time) (string, error) {
	if t == nil {
		return "", nil
	}
	if t.Literal != "" {
		if t.Key != "" || t.Claims != nil || t.Payload != nil || t.Header != nil {
			return "", errors.New("literal excludes key, header, claims and payload")
		}
		return t.Literal, nil
	}
	s := signers[t.Key]
	if s == nil {
		return "", fmt.Errorf("key: no key named %q in the file's keys", t.Key)
	}
	alg := cmp.Or(t.Alg, s.alg)
	header := map[string]any{"alg": alg}
	if s.kid != "" {
		header["kid"] = s.kid
	}
	for k, v := range t.Header {
		if v == nil {
			delete(header, k)
		} else {
			header[k] = v
		}
	}
	var payload []byte
	switch {
	case t.Payload != nil && t.Claims != nil:
		return "", errors.New("give claims or payload, not both")
	case t.Payload != nil:
		payload = []byte(*t.Payload)
	default:
		claims, err := resolveClaims(t.Claims, now)
		if err != nil {
			return "", err
		}
		if payload, err = json.Marshal(claims); err != nil {
			return "", fmt.Errorf("claims: %w", err)
		}
	}
	hdr, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("header: %w", err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(hdr) + "." + enc.EncodeToString(payload)
	sig, err := jwsbb.Sign(s.key, alg, []byte(input), nil)
	if err != nil {
		return "", fmt.Errorf("sign with key %q as %s: %w", t.Key, alg, err)
	}
	return input + "." + enc.EncodeToString(sig), nil
}

// timeClaims take relative times: now, +2m, -1h, now+30s, or RFC 3339.
var timeClaims = map[string]bool{"exp": true, "nbf": true, "iat": true, "auth_time": true}

func resolveClaims(in map[string]any, now time.Time) (map[string]any, error) {
	out := make(map[string]any, len(in))
	for k, v := range in {
		s, isString := v.(string)
		switch {
		case v == nil:
			// null leaves the claim out, so `<<: *base` plus `jti: null`
			// drops one claim of a shared set.
		case isString && timeClaims[k]:
			t, err := relativeTime(s, now)
			if err != nil {
				return nil, fmt.Errorf("claims.%s: %w", k, err)
			}
			out[k] = t.Unix()
		case isString && k == "jti" && s == "random":
			b := make([]byte, 16)
			rand.Read(b)
			out[k] = hex.EncodeToString(b)
		default:
			out[k] = v
		}
	}
	return out, nil
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
	respHeaders := headerMap(denied.GetHeaders())
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
