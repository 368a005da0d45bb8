package dpop

import "strings"

// NormalizeHTU returns the normal form of a proof's htu (RFC 9449 §4.3:
// RFC 3986 §6.2.2 syntax-based and §6.2.3 scheme-based normalisation), or
// false when it is not an absolute http(s) URI without query, fragment or
// user information — RFC 9449 §4.2 says htu carries no query or fragment,
// so one that does was made for another request.
func NormalizeHTU(htu string) (string, bool) {
	scheme, rest, ok := strings.Cut(htu, "://")
	if !ok || strings.ContainsAny(rest, "?#") {
		return "", false
	}
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	if strings.IndexByte(authority, '@') >= 0 {
		return "", false
	}
	return normalize(scheme, authority, path)
}

// requestURI is the normal form of the URI Envoy saw.
func requestURI(r Request) (string, bool) {
	path, _, _ := strings.Cut(r.Path, "?")
	path, _, _ = strings.Cut(path, "#")
	if strings.IndexByte(r.Authority, '@') >= 0 {
		return "", false
	}
	return normalize(r.Scheme, r.Authority, path)
}

func normalize(scheme, authority, path string) (string, bool) {
	scheme = strings.ToLower(scheme)
	var defaultPort string
	switch scheme {
	case "https":
		defaultPort = "443"
	case "http":
		defaultPort = "80"
	default:
		return "", false
	}
	if !printableASCII(authority) || !printableASCII(path) {
		return "", false
	}
	host, port := authority, ""
	if strings.HasPrefix(authority, "[") {
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return "", false
		}
		host, port = authority[:end+1], authority[end+1:]
		if port != "" && port[0] != ':' {
			return "", false
		}
		port = strings.TrimPrefix(port, ":")
	} else if i := strings.LastIndexByte(authority, ':'); i >= 0 {
		host, port = authority[:i], authority[i+1:]
	}
	if !validHost(host) {
		return "", false
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return "", false
		}
	}
	if port != "" {
		// "host:" means the default port (RFC 3986 §6.2.3); 0443 is 443.
		if port = strings.TrimLeft(port, "0"); port == "" {
			port = "0"
		}
	}
	var b strings.Builder
	b.Grow(len(scheme) + 3 + len(authority) + len(path) + 1)
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(strings.ToLower(host))
	if port != "" && port != defaultPort {
		b.WriteByte(':')
		b.WriteString(port)
	}
	p, ok := normalizePath(path)
	if !ok {
		return "", false
	}
	b.WriteString(p)
	return b.String(), true
}

// validHost accepts an RFC 3986 §3.2.2 host: an IP literal in brackets, or
// a reg-name of unreserved and sub-delims characters. A ':' outside
// brackets (two ports) or a percent-encoded name has no single normal form,
// so it is refused rather than guessed at.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	if h[0] == '[' {
		for i := 1; i < len(h)-1; i++ {
			if c := h[i]; !isHex(c) && c != ':' && c != '.' {
				return false
			}
		}
		return len(h) > 2 && h[len(h)-1] == ']'
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !isUnreserved(c) && strings.IndexByte("!$&'()*+,;=", c) < 0 {
			return false
		}
	}
	return true
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// normalizePath decodes percent-encoded unreserved characters, upper-cases
// the hex of the rest, removes dot segments, and makes an empty path "/". A
// character outside the path grammar makes it no path at all.
func normalizePath(p string) (string, bool) {
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '%' {
			// RFC 3986 pchar and "/"; anything else ('\\', '|', '{', …)
			// is read differently by different servers.
			if !isUnreserved(c) && strings.IndexByte("!$&'()*+,;=:@/", c) < 0 {
				return "", false
			}
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			return "", false
		}
		v := unhex(p[i+1])<<4 | unhex(p[i+2])
		if isUnreserved(v) {
			b.WriteByte(v)
		} else {
			b.WriteByte('%')
			b.WriteByte(upper(p[i+1]))
			b.WriteByte(upper(p[i+2]))
		}
		i += 2
	}
	out := removeDotSegments(b.String())
	if out == "" {
		out = "/"
	}
	return out, true
}

// removeDotSegments is RFC 3986 §5.2.4.
func removeDotSegments(in string) string {
	if !strings.Contains(in, ".") {
		return in
	}
	var out []string
	segs := strings.Split(in, "/")
	for i, s := range segs {
		switch s {
		case ".":
			if i == len(segs)-1 {
				out = append(out, "")
			}
		case "..":
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
			if i == len(segs)-1 {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return strings.Join(out, "/")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
