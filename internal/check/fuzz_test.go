package check

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/replay"
	"github.com/extauthz/extauthz/test/jose"
)

// fzFormBodies are the adversarial form bodies of test/adversarial.
var fzFormBodies = []string{
	"",
	"grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
	"a=1&a=2",
	"client_assertion=x&client%5Fassertion=y",
	"%63%6c%69%65%6e%74%5f%69%64=x&client_id=y",
	"a=1;b=2",
	"a=1&;",
	"a=%zz",
	"a=%4",
	"%=1",
	"client%255Fassertion=x",
	"a=b%3Bc",
	"a+b=c+d&%20=%20",
	"&&&a&&=&",
	"=x",
	"a=%00%0D%0A%EF%BB%BF",
	"a=\xff\xfe",
	"access_token=x&access%5ftoken=y",
	strings.Repeat("a=1&", 100) + "b",
}

// FuzzParseForm checks the strict form parser against net/url: what it
// accepts net/url accepts with one value per name, and it reads the same
// values; a duplicate it reports is one; and its output round-trips.
func FuzzParseForm(f *testing.F) {
	for _, b := range fzFormBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		params, err := parseForm(string(body))
		ref, refErr := url.ParseQuery(string(body))
		var de *duplicateError
		isDup := errors.As(err, &de)
		dup := ""
		if isDup {
			dup = de.name
		}
		switch {
		case err != nil && !isDup:
			if refErr == nil {
				t.Fatalf("parseForm refused what net/url accepts: %v", err)
			}
			if params != nil {
				t.Fatal("an error with results")
			}
			return
		case isDup:
			// net/url keeps reading past a bad pair, so it has every
			// value of the name parseForm stopped at.
			if len(ref[dup]) < 2 {
				t.Fatalf("duplicate %q reported, net/url has %q", dup, ref[dup])
			}
			if params != nil {
				t.Fatal("a duplicate with results")
			}
			return
		case params == nil:
			t.Fatalf("no parameters, no duplicate and no error: net/url reads %q (a duplicate of the empty name reads as no duplicate)", ref)
		case refErr != nil:
			t.Fatalf("parseForm accepted what net/url refuses: %v", refErr)
		}
		if len(params) != len(ref) {
			t.Fatalf("%d parameters, net/url has %d", len(params), len(ref))
		}
		for k, vs := range ref {
			if len(vs) != 1 {
				t.Fatalf("%q appears %d times but no duplicate was reported", k, len(vs))
			}
			if v, ok := params[k]; !ok || v != vs[0] {
				t.Fatalf("%q = %q, net/url reads %q", k, v, vs[0])
			}
		}
		if strings.IndexByte(string(body), ';') >= 0 {
			t.Fatal("a raw ; was accepted")
		}
		// Round trip: encoding the parameters and parsing again gives them
		// back, with no duplicate.
		names := make([]string, 0, len(params))
		for k := range params {
			names = append(names, k)
		}
		sort.Strings(names)
		var enc []string
		for _, k := range names {
			enc = append(enc, url.QueryEscape(k)+"="+url.QueryEscape(params[k]))
		}
		again, err := parseForm(strings.Join(enc, "&"))
		if err != nil || len(again) != len(params) {
			t.Fatalf("round trip: %v %d/%d", err, len(again), len(params))
		}
		for k, v := range params {
			if again[k] != v {
				t.Fatalf("round trip: %q = %q, was %q", k, again[k], v)
			}
		}
	})
}

// b64token is RFC 6750's grammar, written independently of isB64Token.
var b64token = regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)

// FuzzAccessToken checks the Authorization parser: a returned token is one
// b64token (so no space or comma: never two credentials), it is what
// follows the scheme and its spaces, and the scheme is Bearer or DPoP in
// some case.
func FuzzAccessToken(f *testing.F) {
	for _, s := range []string{
		"Bearer abc", "bearer abc", "BEARER abc", "Bearer", "Bearer ", "Bearer  abc", "Bearer\tabc", "Bearerabc",
		"Bearer a b", "Bearer a, Bearer b", "Bearer a,b", "Bearer a==", "Bearer =a", "Bearer a=b", "Bearer a.b.c",
		"Bearer a+/~-._", "Bearer \"a\"", "Bearer a;", "Bearer {\"payload\":\"x\"}", "Basic dTpw", "Token abc",
		"Bearer \ufeffabc", "Bearer abc\x00", "Bearer abc\r\n", "B\u0435arer abc", "Bearer \u00e4bc", "",
		"DPoP a.b.c", "dpop a.b.c", "DPoP", "DPoP a, DPoP b", "DPoP\ta.b.c", "DPoPa.b.c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tok, scheme, malformed := accessToken(v)
		name, rest, hasSpace := strings.Cut(v, " ")
		want := schemeNone
		switch {
		case strings.EqualFold(name, "bearer"):
			want = schemeBearer
		case strings.EqualFold(name, "dpop"):
			want = schemeDPoP
		}
		if scheme != want {
			t.Fatalf("scheme = %v for %q", scheme, name)
		}
		ok := scheme != schemeNone
		if !ok || malformed {
			if tok != "" {
				t.Fatalf("a token %q with scheme=%v malformed=%v", tok, scheme, malformed)
			}
			if ok && hasSpace && b64token.MatchString(strings.TrimLeft(rest, " ")) {
				t.Fatalf("%q refused, but its credential is a b64token", v)
			}
			return
		}
		if !b64token.MatchString(tok) || strings.ContainsAny(tok, " ,\t\r\n\x00") {
			t.Fatalf("token %q is not one b64token", tok)
		}
		if strings.TrimLeft(rest, " ") != tok {
			t.Fatalf("token %q is not the credential of %q", tok, v)
		}
	})
}

// fzNow is the fuzzed server's clock.
var fzNow = time.Unix(1_900_000_000, 0)

// fzPolicy has a rule for each credential kind and one for either. Every
// rule requires something no seed token has (a "fuzz" claim, a scope never
// granted), and nothing else allows: any allow is a bug, because a fuzzer
// cannot forge a signature.
const fzPolicy = `version: v1
issuers:
  - name: ec
    issuer: ec-client
    jwks: {{EC}}
  - name: hmac
    issuer: hmac-client
    hmac_secret_file: hmac.secret
  - name: mesh
    jwks: {{MESH}}
    spiffe_trust_domain: example.org
rules:
  - name: token
    match: {paths: [/token]}
    client_assertion:
      issuers: [ec, hmac, mesh]
      audiences: [https://as.example/token]
      replay_protection: false
    require: ['claims.?fuzz.orValue("") == "allow"']
    headers:
      x-client-id: client_id
      x-user: 'claims.?name.orValue("")'
  - name: api
    match: {path_prefixes: [/api/]}
    bearer:
      issuers: [ec, hmac, mesh]
      audiences: [api]
      scopes: [never-granted]
    headers:
      x-client-id: client_id
  - name: either
    match: {paths: [/either]}
    client_assertion:
      issuers: [ec]
      audiences: [https://as.example/token]
      replay_protection: false
    bearer:
      issuers: [hmac]
      audiences: [api]
    require: ['claims.?fuzz.orValue("") == "allow"']
default_action: deny
`

type fzEnv struct {
	srv     *Server
	ec      *ecdsa.PrivateKey
	mesh    *ecdsa.PrivateKey
	secret  []byte
	reasons map[string]bool
}

// newFzEnv builds the in-process server of FuzzCheck: static keys only, so
// no network, and a fixed clock.
func newFzEnv(f *testing.F) *fzEnv {
	f.Helper()
	must := func(err error) {
		if err != nil {
			f.Fatal(err)
		}
	}
	e := &fzEnv{secret: make([]byte, 32)}
	var err error
	e.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	e.mesh, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	rand.Read(e.secret)
	dir := f.TempDir()
	doc := strings.NewReplacer(
		"{{EC}}", string(jose.JWKS(jose.PublicJWK("ec-1", "ES256", &e.ec.PublicKey))),
		"{{MESH}}", string(jose.JWKS(jose.PublicJWK("mesh-1", "ES256", &e.mesh.PublicKey))),
	).Replace(fzPolicy)
	must(os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(doc), 0o600))
	must(os.WriteFile(filepath.Join(dir, "hmac.secret"), e.secret, 0o600))
	plane, err := keys.NewPlane(keys.Config{})
	must(err)
	f.Cleanup(func() { plane.Close() })
	snap, err := policy.Load([]string{filepath.Join(dir, "policy.yaml")}, policy.Options{Keys: plane})
	must(err)
	clock := func() time.Time { return fzNow }
	e.srv = New(Config{
		Policy: policy.NewStore(snap),
		Replay: replay.NewMemory(replay.MemoryConfig{MaxEntries: 1000, Clock: clock}),
		Now:    clock,
	})
	e.reasons = map[string]bool{}
	for _, r := range []string{
		ReasonNoRule, ReasonUnknownRule, ReasonMissing, ReasonMalformedReq, ReasonPartialBody, ReasonBodyTooLarge,
		ReasonBadForm, ReasonDuplicateParam, ReasonTwoCredentials, ReasonSecretAndAssert, ReasonAssertionType,
		ReasonClientIDParam, ReasonMalformedToken, ReasonAlgorithm, ReasonCritical, ReasonClaimType, ReasonTokenType,
		ReasonIssuer, ReasonSubject, ReasonKID, ReasonNoKey, ReasonSignature, ReasonExpired, ReasonNotYetValid,
		ReasonIssuedInFuture, ReasonExpMissing, ReasonLifetime, ReasonAudience, ReasonJTIMissing, ReasonScope, ReasonRequire,
	} {
		e.reasons[r] = true
	}
	return e
}

// seedTokens are genuine tokens (which the policy still denies) and the
// adversarial ones of test/adversarial.
func (e *fzEnv) seedTokens(f *testing.F) []string {
	f.Helper()
	now := fzNow.Unix()
	assertion := map[string]any{"iss": "ec-client", "sub": "ec-client", "aud": "https://as.example/token", "jti": "j", "iat": now, "exp": now + 60, "name": "alice"}
	access := map[string]any{"iss": "hmac-client", "sub": "u", "aud": "api", "client_id": "app", "scope": "read", "iat": now, "exp": now + 60}
	svid := map[string]any{"sub": "spiffe://example.org/ns/a/sa/b", "aud": []any{"https://as.example/token"}, "iat": now, "exp": now + 60}
	sign := func(alg string, key any, hdr, c map[string]any) string {
		s, err := jose.Sign(alg, key, hdr, c)
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	der, err := x509.MarshalPKIXPublicKey(&e.ec.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	raw := func(h, p string) string {
		return base64.RawURLEncoding.EncodeToString([]byte(h)) + "." + base64.RawURLEncoding.EncodeToString([]byte(p)) + ".c2ln"
	}
	good := sign("ES256", e.ec, map[string]any{"kid": "ec-1"}, assertion)
	return []string{
		good,
		sign("HS256", e.secret, nil, access),
		sign("ES256", e.mesh, map[string]any{"kid": "mesh-1"}, svid),
		sign("none", nil, map[string]any{"alg": "nOnE"}, assertion),
		sign("HS256", pubPEM, map[string]any{"kid": "ec-1"}, assertion),
		sign("ES256", e.ec, map[string]any{"kid": "ec-1", "crit": []any{"exp"}}, assertion),
		sign("ES256", e.ec, map[string]any{"kid": "../../etc/passwd", "jku": "http://127.0.0.1:1/jwks"}, assertion),
		raw(`{"alg":"ES256","kid":"ec-1","alg":"none"}`, `{"sub":"a","sub":"b"}`),
		raw(`{"alg":"ES256"}`, `{"exp":"2030-01-01T00:00:00Z","aud":[]}`),
		raw(`{"alg":"ES256"}`, `{"x":`+strings.Repeat("[", 100)+strings.Repeat("]", 100)+`}`),
		raw("\ufeff{\"alg\":\"ES256\"}", "{\"sub\":\"\xff\"}"),
		raw(`{"alg":"RSA-OAEP","enc":"A256GCM"}`, `{}`) + ".aaaa.bbbb",
		`{"protected":"eyJhbGciOiJFUzI1NiJ9","payload":"e30","signature":"c2ln"}`,
		good + "==", good + ".", " " + good, strings.NewReplacer("-", "+", "_", "/").Replace(good),
		strings.Repeat("a.", 1000) + "a",
	}
}

// FuzzCheck sends whole CheckRequests, built from fuzzed parts around the
// adversarial seeds, through the Check server. Whatever the input: no
// panic, no gRPC error, and a deny of the spec's shape — never an allow,
// since no rule can be satisfied without a signature the fuzzer cannot
// make — that never echoes the credential; and the same decision when
// the request is decoded as Register's handler decodes it.
func FuzzCheck(f *testing.F) {
	e := newFzEnv(f)
	form := "application/x-www-form-urlencoded"
	urn := url.QueryEscape("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	for i, tok := range e.seedTokens(f) {
		body := []byte("grant_type=client_credentials&client_assertion_type=" + urn + "&client_assertion=" + url.QueryEscape(tok))
		f.Add("POST", "/token", "", form, body, "", "", i%2 == 0, false)
		f.Add("GET", "/api/x?y=1", "Bearer "+tok, "", []byte(nil), "x-client-id", "admin", i%2 == 1, false)
		f.Add("POST", "/either", "bearer  "+tok, form, body, "x_client_id", "admin", false, false)
	}
	for _, b := range fzFormBodies {
		f.Add("POST", "/token", "Basic YTpi", form+"; charset=utf-8", []byte(b), "x-envoy-auth-partial-body", "true", false, true)
	}
	f.Add("POST", "/api/x?access_token=a;access_token=b", "Bearer a.b.c, Bearer d", "multipart/form-data; boundary=x", []byte("--x\r\n"), "authorization", "Bearer e.f.g", true, false)
	f.Add("GET", "/nothing", "", "", []byte(nil), "", "", false, false)

	f.Fuzz(func(t *testing.T, method, path, authorization, contentType string, body []byte, hName, hValue string, headerMap, rawBody bool) {
		req := fzRequest(method, path, authorization, contentType, body, hName, hValue, headerMap, rawBody)
		resp, err := e.srv.Check(context.Background(), req)
		if err != nil {
			// Check recovered a panic; Explain does not, so the fuzzer
			// records it with its stack.
			e.srv.Explain(context.Background(), req)
			t.Fatalf("Check returned an error: %v", err)
		}
		e.checkDeny(t, resp, authorization)
		// The same bytes as extauthz serve's handler serves them: decoded
		// into the view when it can (else as the message), checked in
		// memory an earlier Check used, and encoded: the same decision.
		wire, err := proto.Marshal(req)
		if err != nil {
			return // invalid UTF-8, which protobuf-go will not marshal
		}
		c := serverCodec()
		dec := func(m any) error { return c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, m) }
		v, err := checkHandler(e.srv, context.Background(), dec, nil)
		if err != nil {
			t.Fatalf("Register's handler: %v", err)
		}
		out, err := c.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var served authv3.CheckResponse
		if err := proto.Unmarshal(out.Materialize(), &served); err != nil || !proto.Equal(&served, resp) {
			t.Fatalf("served by Register's handler: %v\n%v\nChecked as the message:\n%v", err, &served, resp)
		}
	})
}

// fzRequest builds the CheckRequest Envoy would send for the parts.
func fzRequest(method, path, authorization, contentType string, body []byte, hName, hValue string, headerMap, rawBody bool) *authv3.CheckRequest {
	hs := [][2]string{{":authority", "as.example"}, {":method", method}, {":path", path}}
	if authorization != "" {
		hs = append(hs, [2]string{"authorization", authorization})
	}
	if contentType != "" {
		hs = append(hs, [2]string{"content-type", contentType})
	}
	if hName != "" {
		hs = append(hs, [2]string{hName, hValue})
	}
	h := &authv3.AttributeContext_HttpRequest{Method: method, Host: "as.example", Path: path, Size: int64(len(body))}
	if headerMap {
		h.HeaderMap = &corev3.HeaderMap{}
		for _, kv := range hs {
			h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: kv[0], RawValue: []byte(kv[1])})
		}
	} else {
		h.Headers = map[string]string{}
		for _, kv := range hs {
			k := strings.ToLower(kv[0])
			if old, ok := h.Headers[k]; ok {
				h.Headers[k] = old + "," + kv[1]
			} else {
				h.Headers[k] = kv[1]
			}
		}
	}
	if rawBody {
		h.RawBody = body
	} else {
		h.Body = string(body)
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: h}}}
}

// checkDeny asserts the shape of a deny from the spec's table.
func (e *fzEnv) checkDeny(t *testing.T, resp *authv3.CheckResponse, credential string) {
	t.Helper()
	meta := map[string]string{}
	for k, v := range resp.GetDynamicMetadata().GetFields() {
		meta[k] = v.GetStringValue()
	}
	code := codes.Code(resp.GetStatus().GetCode())
	d := resp.GetDeniedResponse()
	if code == codes.OK || resp.GetOkResponse() != nil || d == nil || meta["decision"] != "deny" {
		t.Fatalf("not a deny: status %v, metadata %v", code, meta)
	}
	if !e.reasons[meta["reason"]] {
		t.Fatalf("reason %q is not a deny reason this policy can give", meta["reason"])
	}
	status := int(d.GetStatus().GetCode())
	switch {
	case status == 401 && code == codes.Unauthenticated:
	case (status == 400 || status == 403) && code == codes.PermissionDenied:
	default:
		t.Fatalf("HTTP %d with gRPC %v (reason %s)", status, code, meta["reason"])
	}
	switch meta["rule"] {
	case "", "token", "api", "either":
	default:
		t.Fatalf("rule %q", meta["rule"])
	}
	// A deny never echoes the credential (nor any long part of it).
	_, cred, _ := strings.Cut(credential, " ")
	if cred = strings.TrimSpace(cred); len(cred) >= 12 {
		if strings.Contains(d.GetBody(), cred) {
			t.Fatal("the deny body echoes the credential")
		}
		for _, h := range d.GetHeaders() {
			if strings.Contains(h.GetHeader().GetValue(), cred) {
				t.Fatalf("deny header %s echoes the credential", h.GetHeader().GetKey())
			}
		}
	}
}

// TestIsB64TokenEveryPosition: a character outside b64token, or a "=" before
// the end, is found wherever it falls in a token, inside the eight-character
// steps or after them.
func TestIsB64TokenEveryPosition(t *testing.T) {
	base := strings.Repeat("aZ09-._~+/", 3)
	for i := range len(base) {
		for _, c := range []string{" ", ",", "\x00", "\xff", "=", "\""} {
			s := base[:i] + c + base[i+1:]
			if got, want := isB64Token(s), b64token.MatchString(s); got != want {
				t.Errorf("isB64Token(%q) = %v, want %v", s, got, want)
			}
		}
		if s := base[:i+1] + strings.Repeat("=", i); !isB64Token(s) {
			t.Errorf("isB64Token(%q) = false", s)
		}
	}
}
