package check

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"strings"
)

// credentialParams carry a credential wherever a framework finds them:
// RFC 6750's access_token, RFC 6749's client_secret and RFC 7521's
// client_assertion. Beside a token in Authorization each is a second
// credential (RFC 6749 §2.3, RFC 6750 §2), which the upstream may read
// instead of the one we verified.
var credentialParams = []string{"access_token", "client_secret", "client_assertion"}

// queryCredentialParams may not be in the URI beside a client assertion
// (RFC 6749 §2.3.1): an upstream could take the client from them.
var queryCredentialParams = []string{"client_id", "client_secret", "client_assertion", "client_assertion_type"}

// canonicalParam is the name a lenient framework files a parameter under:
// case folded, `access_token[]` and `access_token[x]` read as arrays of
// access_token, and '.', ' ' (a decoded '+') and an unmatched '[' read as
// '_' (PHP's rules; Rack's and others' are a subset).
func canonicalParam(name string) string {
	// Names are checked on every Check: the common one that folds to
	// itself costs no allocation.
	plain := true
	for i := 0; i < len(name) && plain; i++ {
		c := name[i]
		plain = !(c >= 'A' && c <= 'Z') && c != '[' && c != '.' && c != ' '
	}
	if plain {
		return name
	}
	name = strings.ToLower(name)
	if i := strings.IndexByte(name, '['); i > 0 {
		if strings.IndexByte(name[i:], ']') > 0 {
			name = name[:i]
		} else {
			name = name[:i] + "_" + name[i+1:]
		}
	}
	return paramFolder.Replace(name)
}

var paramFolder = strings.NewReplacer(".", "_", " ", "_")

// nameOf is k as matched: folded by canonicalParam, or exact.
func nameOf(k string, fold bool) string {
	if fold {
		return canonicalParam(k)
	}
	return k
}

func isOneOf(name string, names []string) bool {
	for _, n := range names {
		if name == n {
			return true
		}
	}
	return false
}

// underscoreSpellings are the bytes of a raw query that can give a name an
// '_' once decoded and folded: '_' itself, what canonicalParam turns into
// one ('.', ' ', '['), '+' (a space) and '%' (an escape of any of them).
// A query with none of these carries no name with an '_', as every
// credential parameter has, so the common ?limit=10 costs one scan.
var underscoreSpellings = func() (t [256]bool) {
	for _, c := range []byte("_.[ +%") {
		t[c] = true
	}
	return t
}()

// spellsUnderscore is strings.ContainsAny(q, "_.[ +%") without building
// the set on every call.
func spellsUnderscore(q string) bool {
	for i := 0; i < len(q); i++ {
		if underscoreSpellings[q[i]] {
			return true
		}
	}
	return false
}

func allHaveUnderscore(names []string) bool {
	for _, n := range names {
		if strings.IndexByte(n, '_') < 0 {
			return false
		}
	}
	return true
}

// queryNames reports whether the raw query carries one of names, encoded
// or not, and with fold in any spelling canonicalParam folds to it. Pairs
// are split on & and on ; (which some frameworks, Rack among them, also
// split on).
func queryNames(rawQuery string, names []string, fold bool) bool {
	if rawQuery == "" || !spellsUnderscore(rawQuery) && allHaveUnderscore(names) {
		return false
	}
	for rest := rawQuery; rest != ""; {
		var pair string
		if i := strings.IndexAny(rest, "&;"); i >= 0 {
			pair, rest = rest[:i], rest[i+1:]
		} else {
			pair, rest = rest, ""
		}
		k, _, _ := strings.Cut(pair, "=")
		if isOneOf(nameOf(k, fold), names) {
			return true
		}
		if strings.ContainsAny(k, "%+") {
			if dk, err := url.QueryUnescape(k); err == nil && isOneOf(nameOf(dk, fold), names) {
				return true
			}
		}
	}
	return false
}

// formNames reports whether a parsed form has one of names (with fold, in
// any spelling that folds to it).
func formNames(form map[string]string, names []string, fold bool) bool {
	for k := range form {
		if isOneOf(nameOf(k, fold), names) {
			return true
		}
	}
	return false
}

// jsonNames reports whether a JSON body's top-level object has a member
// that names a credential. A body that is not JSON holds none an upstream
// could read as JSON.
func jsonNames(body string, names []string) bool {
	dec := json.NewDecoder(strings.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return false
		}
		if k, ok := t.(string); ok && isOneOf(canonicalParam(k), names) {
			return true
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false
		}
	}
	return false
}

// multipartNames reports whether a multipart/form-data body has a part
// named for a credential. A body that does not parse is refused too
// (malformed): what we cannot read, a lenient upstream might.
func multipartNames(body, contentType string, names []string) (found, malformed bool) {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil || params["boundary"] == "" {
		return false, true
	}
	mr := multipart.NewReader(strings.NewReader(body), params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return false, false
		}
		if err != nil {
			return false, true
		}
		if isOneOf(canonicalParam(p.FormName()), names) {
			return true, false
		}
	}
}

// hiddenCredential looks for a credential parameter beside an access token
// in every place a framework may read one: the query and form in any
// spelling, a multipart or JSON body, and a body without Content-Type read
// as a form and as JSON. found names where.
func hiddenCredential(r *httpRequest, form map[string]string, mediaType string) (found string) {
	if queryNames(r.Query, credentialParams, true) {
		return "query"
	}
	if formNames(form, credentialParams, true) {
		return "form"
	}
	if r.body == "" {
		return ""
	}
	switch {
	case mediaType == "multipart/form-data":
		if ok, bad := multipartNames(r.body, r.headerValue("content-type"), credentialParams); ok || bad {
			return "multipart body"
		}
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
		if jsonNames(r.body, credentialParams) {
			return "JSON body"
		}
	case mediaType == "":
		if q, err := url.ParseQuery(r.body); err == nil || len(q) > 0 {
			for k := range q {
				if isOneOf(canonicalParam(k), credentialParams) {
					return "body without Content-Type"
				}
			}
		}
		if jsonNames(r.body, credentialParams) {
			return "body without Content-Type"
		}
	}
	return ""
}
