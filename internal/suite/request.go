package suite

import (
	"cmp"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

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

const grantTypeJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// grant adds a test's RFC 7523 §2.1 grant to its form: the signed JWT as
// assertion, and grant_type jwt-bearer unless the test sets another.
func (b *build) grant(t *testToken, rawBody bool, form map[string]string) error {
	if t == nil {
		return nil
	}
	if rawBody {
		return errors.New("grant adds form parameters; with a raw body put the assertion in it")
	}
	tok, err := b.token(t)
	if err != nil {
		return err
	}
	form["assertion"] = tok
	if _, ok := form["grant_type"]; !ok {
		form["grant_type"] = grantTypeJWTBearer
	}
	return nil
}
