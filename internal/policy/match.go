package policy

import (
	"fmt"
	"net/netip"
	"strings"

	policyv1 "github.com/extauthz/extauthz/proto/extauthz/policy/v1"
)

// match compiles a match block.
func (c *compiler) match(el *errorList, path string, pm *policyv1.Match) Match {
	var m Match
	if pm == nil {
		return m
	}
	for i, h := range pm.GetHosts() {
		host, msg := matchHost(h)
		switch {
		case msg != "":
			el.add(fmt.Sprintf("%s.hosts[%d]", path, i), "%s", msg)
		case strings.HasPrefix(host, "*."):
			m.hostsSuffix = append(m.hostsSuffix, host[1:])
		default:
			if m.hostsExact == nil {
				m.hostsExact = map[string]bool{}
			}
			m.hostsExact[host] = true
		}
	}
	if m.hostsExact == nil && m.hostsSuffix != nil {
		m.hostsExact = map[string]bool{}
	}
	for i, p := range pm.GetPaths() {
		if !strings.HasPrefix(p, "/") || strings.Contains(p, "?") {
			el.add(fmt.Sprintf("%s.paths[%d]", path, i), "must start with / and have no query string, got %q", p)
			continue
		}
		if m.paths == nil {
			m.paths = map[string]bool{}
		}
		m.paths[p] = true
	}
	for i, p := range pm.GetPathPrefixes() {
		if !strings.HasPrefix(p, "/") || strings.Contains(p, "?") {
			el.add(fmt.Sprintf("%s.path_prefixes[%d]", path, i), "must start with / and have no query string, got %q", p)
			continue
		}
		m.prefixes = append(m.prefixes, p)
	}
	for i, meth := range pm.GetMethods() {
		if meth == "" || meth != strings.ToUpper(meth) || !isToken(meth) {
			el.add(fmt.Sprintf("%s.methods[%d]", path, i), "must be an upper-case HTTP method, got %q", meth)
			continue
		}
		if m.methods == nil {
			m.methods = map[string]bool{}
		}
		m.methods[meth] = true
	}
	return m
}

// matchHost compiles one match.hosts entry, lower-cased: a host name, "*."
// and a name, or an IPv6 address in brackets as :authority carries it
// ([::1], whose requests come as [::1]:8443), written canonically so that
// [2001:DB8:0::1] is [2001:db8::1]. msg says what is wrong with h.
func matchHost(h string) (host, msg string) {
	h = strings.ToLower(h)
	if rest, ok := strings.CutPrefix(h, "["); ok {
		lit, after, closed := strings.Cut(rest, "]")
		switch {
		case !closed:
			return "", fmt.Sprintf("an IPv6 address in brackets lacks its closing \"]\": %q", h)
		case strings.HasPrefix(after, ":"):
			return "", fmt.Sprintf("hosts have no port (a request's port is ignored): write %q", "["+lit+"]")
		case after != "":
			return "", fmt.Sprintf("unexpected %q after the IPv6 address: %q", after, h)
		}
		addr, err := netip.ParseAddr(lit)
		switch {
		case err != nil || !addr.Is6():
			return "", fmt.Sprintf("not an IPv6 address in brackets: %q", h)
		case addr.Zone() != "":
			return "", fmt.Sprintf("an IPv6 zone (%%%s) is not part of a host; leave it out", addr.Zone())
		}
		return "[" + addr.String() + "]", ""
	}
	if addr, err := netip.ParseAddr(h); err == nil && addr.Is6() {
		return "", fmt.Sprintf("an IPv6 address is written in brackets, as in :authority: %q", "["+addr.WithZone("").String()+"]")
	}
	if name, port, ok := strings.Cut(h, ":"); ok && name != "" && port != "" && strings.Trim(port, "0123456789") == "" {
		return "", fmt.Sprintf("hosts have no port (a request's port is ignored): write %q", name)
	}
	if h == "" || strings.ContainsAny(h, "/:[] \t") || strings.Count(h, "*") > 1 || (strings.Contains(h, "*") && !strings.HasPrefix(h, "*.")) {
		return "", fmt.Sprintf("must be a host name, optionally starting with \"*.\", or an IPv6 address in brackets, with no port; got %q", h)
	}
	return h, ""
}
