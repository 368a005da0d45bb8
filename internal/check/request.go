package check

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unsafe"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/extauthz/extauthz/internal/policy"
)

const (
	assertionTypeJWT = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// assertionTypeSPIFFE is draft-ietf-oauth-spiffe-client-auth's type for
	// a JWT-SVID used as a client assertion.
	assertionTypeSPIFFE = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe"
	formContentType     = "application/x-www-form-urlencoded"
)

// httpRequest is what a Check reads of Envoy's AttributeContext.
type httpRequest struct {
	policy.Request
	// authorization is the Authorization value; Envoy joins repeated
	// headers with ",", and so does readRequest for header_map.
	authorization    string
	hasAuthorization bool
	// body is the request body, read only: a raw_body is viewed as a
	// string without a copy, so no byte is copied before the size check.
	body        string
	partialBody bool
	// scheme and authority are :scheme and :authority as Envoy saw them (a
	// DPoP proof's htu names them; Host has lost the port).
	scheme, authority string
	// peerCert is Envoy's URL-encoded PEM of the client certificate, "" when
	// the connection had none or include_peer_certificate is off.
	peerCert string
	// peer is peerCert parsed, once, when a binding needs it.
	peer *peerCertificate
	// principal is Envoy's source.principal: the peer certificate's URI SAN
	// or subject, "" without mTLS.
	principal string
	// scratch is the Check's memory this view lives in (scratch.go); nil
	// for a view built some other way.
	scratch *checkScratch
	// start is when the Check began, on the system clock (checkNow).
	start time.Time
}

// readRequest reads Envoy's attributes into the view r. Both header
// encodings Envoy uses (the `headers` map, or `header_map` with raw values
// when encode_raw_headers is on) give the same view, so they give the same
// decision: repeated headers are joined with ",", as Envoy joins them.
// decodeView gives the same view straight from the wire.
func readRequest(req *authv3.CheckRequest, r *httpRequest) {
	h := req.GetAttributes().GetRequest().GetHttp()
	r.Method = h.GetMethod()
	r.scheme, r.authority = h.GetScheme(), h.GetHost()
	r.peerCert = req.GetAttributes().GetSource().GetCertificate()
	r.principal = req.GetAttributes().GetSource().GetPrincipal()
	if hm := h.GetHeaderMap(); hm != nil && len(hm.GetHeaders()) > 0 {
		r.Headers = make(map[string]string, len(hm.GetHeaders()))
		for _, hv := range hm.GetHeaders() {
			k := strings.ToLower(hv.GetKey())
			v := hv.GetValue()
			if raw := hv.GetRawValue(); len(raw) > 0 {
				v = string(raw)
			}
			if old, ok := r.Headers[k]; ok {
				v = old + "," + v
			}
			r.Headers[k] = v
		}
	} else if hs := h.GetHeaders(); lowerKeys(hs) {
		// Envoy sends lower-case names: the map is used as it is, read
		// only, saving a copy per Check.
		r.Headers = hs
	} else {
		r.Headers = make(map[string]string, len(hs))
		for k, v := range hs {
			k = strings.ToLower(k)
			if old, ok := r.Headers[k]; ok {
				v = old + "," + v
			}
			r.Headers[k] = v
		}
	}
	body := h.GetBody()
	if raw := h.GetRawBody(); len(raw) > 0 {
		body = unsafe.String(unsafe.SliceData(raw), len(raw))
	}
	r.settle(h.GetPath(), body)
}

// settle derives the rest of the view once its method, authority, scheme,
// peer and headers are read: the host, path and query of path, the
// Authorization header, :authority and :scheme when Envoy did not send them
// in their fields, and the body.
func (r *httpRequest) settle(path, body string) {
	r.Path, r.Query, _ = strings.Cut(path, "?")
	r.authorization, r.hasAuthorization = r.Header("authorization")
	if r.authority == "" {
		r.authority = r.headerValue(":authority")
	}
	r.Host = hostOnly(r.authority)
	if r.scheme == "" {
		r.scheme = r.headerValue(":scheme")
	}
	r.body = body
	r.partialBody = strings.EqualFold(r.headerValue("x-envoy-auth-partial-body"), "true")
}

// headerValue is the value of the header name, "" when there is none.
func (r *httpRequest) headerValue(name string) string {
	v, _ := r.Header(name)
	return v
}

func lowerKeys(m map[string]string) bool {
	for k := range m {
		for i := 0; i < len(k); i++ {
			if c := k[i]; c >= 'A' && c <= 'Z' {
				return false
			}
		}
	}
	return true
}

// hostOnly lower-cases an :authority and drops its port. An IPv6 literal
// is written in its canonical form (RFC 5952), as the policy's hosts are,
// so [0:0::1] cannot slip past a rule for [::1].
func hostOnly(authority string) string {
	host := authority
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			host = host[:i+1]
			if a, err := netip.ParseAddr(host[1:i]); err == nil && a.Is6() {
				return "[" + a.String() + "]"
			}
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// contentType is the body's media type, lower-case, without parameters.
// It is read the way lenient upstream frameworks read it (the part before
// the first ;), so a malformed parameter cannot hide a form from us that
// the upstream will parse. multiple is true when Envoy joined two
// Content-Type headers, which a credential rule refuses.
func (r *httpRequest) contentType() (mediaType string, multiple bool) {
	ct := r.headerValue("content-type")
	mt, _, _ := strings.Cut(ct, ";")
	if strings.IndexByte(mt, ',') >= 0 {
		return "", true
	}
	return strings.ToLower(strings.TrimSpace(mt)), false
}

// parseForm decodes an application/x-www-form-urlencoded body strictly:
// only & separates parameters (a raw ; is an error, as in Go's net/url, so a
// value can never be split two ways), every escape must be valid, values are
// decoded exactly once, and a parameter named twice (the empty name too) is
// a *duplicateError.
func parseForm(s string) (map[string]string, error) {
	params := make(map[string]string, 4)
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, "&")
		if pair == "" {
			continue
		}
		if strings.IndexByte(pair, ';') >= 0 {
			return nil, errSemicolon
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, err
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return nil, err
		}
		if _, ok := params[key]; ok {
			return nil, &duplicateError{name: key}
		}
		params[key] = val
	}
	return params, nil
}

// duplicateError names a form parameter given more than once.
type duplicateError struct{ name string }

func (e *duplicateError) Error() string {
	return fmt.Sprintf("check: parameter %q given twice", e.name)
}

type formError string

func (e formError) Error() string { return string(e) }

const errSemicolon = formError("check: semicolon in form body")

// tokenScheme is the Authorization scheme an access token came in.
type tokenScheme uint8

const (
	schemeNone   tokenScheme = iota
	schemeBearer             // RFC 6750
	schemeDPoP               // RFC 9449 §7.1
)

// accessToken parses Bearer and DPoP credentials, which share RFC 6750's
// syntax. scheme is schemeNone when the header is neither; malformed is
// true when it claims to be one but is not exactly one b64token.
func accessToken(v string) (tok string, scheme tokenScheme, malformed bool) {
	name, rest, found := strings.Cut(v, " ")
	switch {
	case strings.EqualFold(name, "bearer"):
		scheme = schemeBearer
	case strings.EqualFold(name, "dpop"):
		scheme = schemeDPoP
	default:
		return "", schemeNone, false
	}
	if !found {
		return "", scheme, true
	}
	rest = strings.TrimLeft(rest, " ")
	if !isB64Token(rest) {
		return "", scheme, true
	}
	return rest, scheme, false
}

// isB64Token checks RFC 6750's b64token: 1*( ALPHA / DIGIT / "-" / "." / "_"
// / "~" / "+" / "/" ) *"=". A comma (Envoy's join of two Authorization
// headers) or a space (two credentials) fails it.
func isB64Token(s string) bool {
	i := 0
	// Eight characters a step, without a branch per character: a token is
	// hundreds of them, and this runs on every Check.
	for ; i+8 <= len(s); i += 8 {
		b := s[i : i+8]
		t := &b64tokenChar
		if t[b[0]]&t[b[1]]&t[b[2]]&t[b[3]]&t[b[4]]&t[b[5]]&t[b[6]]&t[b[7]] == 0 {
			break
		}
	}
	for i < len(s) && b64tokenChar[s[i]] == 1 {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// b64tokenChar is 1 for the characters of b64token's first part, else 0.
var b64tokenChar = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = 1, 1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = 1
	}
	for _, c := range "-._~+/" {
		t[c] = 1
	}
	return t
}()
