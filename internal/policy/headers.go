package policy

import (
	"slices"
	"strings"
)

// The headers a policy manages: the names rules set or strip_headers lists,
// every spelling of them, and the names no policy may touch.

// maxSeparators bounds the spellings of one managed header name.
const maxSeparators = 8

// manage records a managed header in every spelling an upstream could read
// as the same header (see HeaderSpellings).
func (c *compiler) manage(el *errorList, path, name string) {
	if n := strings.Count(name, "-") + strings.Count(name, "_"); n > maxSeparators {
		el.add(path, "header %q has more than %d - or _ separators; each spelling must be stripped, so use a shorter name", name, maxSeparators)
		return
	}
	for _, v := range HeaderSpellings(name) {
		c.managed[v] = true
	}
}

// AllSpellings is HeaderSpellings of every name, sorted: what an allow
// removes for a policy managing exactly these headers.
func AllSpellings(names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, HeaderSpellings(n)...)
	}
	slices.Sort(out)
	return out
}

// HeaderSpellings lists name with each of its k separators written as - or
// _, 2^k names in lexical order: frameworks that map headers to CGI-style
// variables (WSGI, Rack, PHP) read x_client-id and x-client_id as
// x-client-id, so an allow must strip every one of them.
func HeaderSpellings(name string) []string {
	out := []string{""}
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if ch != '-' && ch != '_' {
			for j := range out {
				out[j] += string(ch)
			}
			continue
		}
		next := make([]string, 0, 2*len(out))
		for _, v := range out {
			next = append(next, v+"-", v+"_")
		}
		out = next
	}
	return out
}

// reservedHeaders may not be set or stripped by a policy: they frame the
// HTTP message or route it, and rewriting them would break the request.
var reservedHeaders = map[string]bool{
	"host": true, "content-length": true, "transfer-encoding": true, "connection": true,
	"keep-alive": true, "proxy-connection": true, "te": true, "trailer": true, "upgrade": true,
}

// headerName validates a header name and returns it lower-cased.
func (c *compiler) headerName(el *errorList, path, name string) (string, bool) {
	l := strings.ToLower(name)
	switch {
	case !isToken(l):
		el.add(path, "not a valid header name: %q", name)
		return "", false
	case reservedHeaders[l]:
		el.add(path, "%q is reserved and may not be managed by a policy", l)
		return "", false
	}
	return l, true
}

// isToken reports whether s is an RFC 9110 token (header names, methods).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", ch) >= 0:
		default:
			return false
		}
	}
	return true
}
