package check

import (
	"mime"
	"net/url"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/extauthz/extauthz/internal/policy"
)

const (
	assertionTypeJWT = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	formContentType  = "application/x-www-form-urlencoded"
)

// httpRequest is what a Check reads of Envoy's AttributeContext.
type httpRequest struct {
	policy.Request
	// authorization is the Authorization value; Envoy joins repeated
	// headers with ",", and so does readRequest for header_map.
	authorization    string
	hasAuthorization bool
	body             []byte
	partialBody      bool
}

// readRequest converts Envoy's attributes. Both header encodings Envoy uses
// (the `headers` map, or `header_map` with raw values when
// encode_raw_headers is on) give the same view, so they give the same
// decision: repeated headers are joined with ",", as Envoy joins them.
func readRequest(req *authv3.CheckRequest) *httpRequest {
	h := req.GetAttributes().GetRequest().GetHttp()
	r := &httpRequest{}
	r.Method = h.GetMethod()
	r.Host = hostOnly(h.GetHost())
	r.Path, r.Query, _ = strings.Cut(h.GetPath(), "?")
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
	r.authorization, r.hasAuthorization = r.Headers["authorization"]
	if r.Host == "" {
		r.Host = hostOnly(r.Headers[":authority"])
	}
	if raw := h.GetRawBody(); len(raw) > 0 {
		r.body = raw
	} else if b := h.GetBody(); b != "" {
		r.body = []byte(b)
	}
	r.partialBody = strings.EqualFold(r.Headers["x-envoy-auth-partial-body"], "true")
	return r
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

// hostOnly lower-cases an :authority and drops its port.
func hostOnly(authority string) string {
	host := authority
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			host = host[:i+1]
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// isForm reports whether the request body is form-encoded.
func (r *httpRequest) isForm() bool {
	ct := r.Headers["content-type"]
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == formContentType
}

// parseForm decodes an application/x-www-form-urlencoded body strictly:
// only & separates parameters (a raw ; is an error, as in Go's net/url, so a
// value can never be split two ways), every escape must be valid, values are
// decoded exactly once, and a parameter named twice is reported by name.
func parseForm(body []byte) (params map[string]string, dup string, err error) {
	params = make(map[string]string, 4)
	s := string(body)
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, "&")
		if pair == "" {
			continue
		}
		if strings.IndexByte(pair, ';') >= 0 {
			return nil, "", errSemicolon
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, "", err
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return nil, "", err
		}
		if _, ok := params[key]; ok {
			return nil, key, nil
		}
		params[key] = val
	}
	return params, "", nil
}

type formError string

func (e formError) Error() string { return string(e) }

const errSemicolon = formError("check: semicolon in form body")

// bearerToken parses RFC 6750 credentials. ok is false when the header is
// not a Bearer credential at all; malformed is true when it claims to be one
// but is not exactly one b64token.
func bearerToken(v string) (tok string, ok, malformed bool) {
	scheme, rest, found := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "bearer") {
		return "", false, false
	}
	if !found {
		return "", true, true
	}
	rest = strings.TrimLeft(rest, " ")
	if !isB64Token(rest) {
		return "", true, true
	}
	return rest, true, false
}

// isB64Token checks RFC 6750's b64token: 1*( ALPHA / DIGIT / "-" / "." / "_"
// / "~" / "+" / "/" ) *"=". A comma (Envoy's join of two Authorization
// headers) or a space (two credentials) fails it.
func isB64Token(s string) bool {
	i := 0
	for i < len(s) {
		c := s[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strings.IndexByte("-._~+/", c) >= 0 {
			i++
			continue
		}
		break
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
