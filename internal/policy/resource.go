package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	policyv1 "github.com/extauthz/extauthz/proto/extauthz/policy/v1"
)

// MetadataPrefix is the well-known path of RFC 9728 protected-resource
// metadata; a resource's path, if any, follows it (§3.1).
const MetadataPrefix = "/.well-known/oauth-protected-resource"

// MetadataMaxAge is the Cache-Control max-age, in seconds, of a served
// metadata document: it changes only when the policy does, and a client
// should see a reload within minutes.
const MetadataMaxAge = 300

// ProtectedResource is a compiled protected_resource block, shared by every
// rule that names the same resource.
type ProtectedResource struct {
	// Resource is the resource identifier exactly as written.
	Resource string
	// Host is the resource's host name, lower-case and without port: what
	// a request for the document must carry in :authority.
	Host string
	// Path is the document's path: MetadataPrefix and the resource's path.
	Path string
	// MetadataURL is where the document lives (RFC 9728 §3.1).
	MetadataURL string
	// Challenge is the `resource_metadata="..."` parameter every
	// WWW-Authenticate of the rule carries (§5.1).
	Challenge string
	// Document is the rendered JSON metadata, rendered once per snapshot.
	Document []byte
	// Rule is the first rule naming the resource, for metrics.
	Rule *Rule

	spec  *policyv1.ProtectedResource
	rules []*Rule
}

// ResourceAt is the metadata document served at host and path (from a
// CheckRequest: host lower-case without port, path without query), nil
// when there is none: a path no rule's resource names is never answered.
func (s *Snapshot) ResourceAt(host, path string) *ProtectedResource {
	for _, pr := range s.resources[path] {
		if pr.Host == host {
			return pr
		}
	}
	return nil
}

// ResourceForPath is the document at path for a server that may not know
// the public host (extauthz's HTTP port sits behind a proxy): the only
// document at path whatever host asks, else the one for host.
func (s *Snapshot) ResourceForPath(path, host string) *ProtectedResource {
	docs := s.resources[path]
	if len(docs) == 1 {
		return docs[0]
	}
	return s.ResourceAt(host, path)
}

// resourceKey identifies a document: two resources whose documents would
// live at the same place are one resource.
func resourceKey(host, path string) string { return host + " " + path }

// protectedResource compiles the rule's protected_resource block, once the
// rest of the rule is compiled; rendering waits for every rule
// (renderResources), because scopes_supported defaults to the scopes of
// every rule of the resource.
func (c *compiler) protectedResource(el *errorList, path string, pr *policyv1.Rule, r *Rule) {
	spec := pr.GetProtectedResource()
	if spec == nil {
		return
	}
	path += ".protected_resource"
	ok := true
	if r.Bearer == nil {
		el.add(path, "needs a bearer credential on the rule: RFC 9728 metadata tells clients where to get the access token the rule takes")
		ok = false
	}
	host, authority, rpath, msg := parseResource(spec.GetResource())
	if msg != "" {
		el.add(path+".resource", "%s", msg)
		ok = false
	}
	if len(spec.GetAuthorizationServers()) == 0 {
		el.add(path+".authorization_servers", "at least one authorization server is required: it is what a client reads the document for")
		ok = false
	}
	for i, as := range spec.GetAuthorizationServers() {
		if msg := issuerURL(as); msg != "" {
			el.add(fmt.Sprintf("%s.authorization_servers[%d]", path, i), "%s", msg)
			ok = false
		}
	}
	for i, s := range spec.GetScopesSupported() {
		if !IsScopeToken(s) {
			el.add(fmt.Sprintf("%s.scopes_supported[%d]", path, i), "not a valid scope token (RFC 6749 §3.3: printable ASCII without space, '\"' or '\\'): %q", s)
			ok = false
		}
	}
	if d := spec.GetResourceDocumentation(); d != "" {
		if !strings.HasPrefix(d, "https://") && !strings.HasPrefix(d, "http://") || strings.ContainsAny(d, " \"\\\r\n\t\x00") {
			el.add(path+".resource_documentation", "must be an absolute http(s) URL, got %q", d)
			ok = false
		}
	}
	if !ok {
		return
	}
	mpath := MetadataPrefix
	if rpath != "/" {
		mpath += rpath
	}
	key := resourceKey(host, mpath)
	if b := c.resources[key]; b != nil {
		switch {
		case b.Resource != spec.GetResource():
			el.add(path+".resource", "%q has its metadata at the same place as rule %q's %q (%s); use one resource identifier", spec.GetResource(), b.Rule.Name, b.Resource, b.MetadataURL)
		case !proto.Equal(b.spec, spec):
			el.add(path, "differs from rule %q's block for the same resource; every rule of one resource publishes one document, so the blocks must be equal", b.Rule.Name)
		case !sameDPoP(b.Rule.Bearer.DPoP, r.Bearer.DPoP):
			el.add(path, "rule %q of the same resource has other dpop settings; the document states one DPoP policy per resource (dpop_bound_access_tokens_required, dpop_signing_alg_values_supported)", b.Rule.Name)
		default:
			b.rules = append(b.rules, r)
			r.Resource = b
		}
		return
	}
	url := "https://" + authority + mpath
	res := &ProtectedResource{
		Resource: spec.GetResource(), Host: host, Path: mpath,
		MetadataURL: url, Challenge: `resource_metadata="` + url + `"`,
		Rule: r, spec: spec, rules: []*Rule{r},
	}
	if c.resources == nil {
		c.resources = map[string]*ProtectedResource{}
	}
	c.resources[key] = res
	r.Resource = res
}

func sameDPoP(a, b *DPoP) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Required == b.Required && a.Algs == b.Algs
}

// renderResources renders every resource's document, in load order, and
// publishes them in the snapshot.
func (c *compiler) renderResources() {
	if len(c.resources) == 0 {
		return
	}
	c.snap.resources = map[string][]*ProtectedResource{}
	for _, r := range c.snap.Rules {
		res := r.Resource
		if res == nil || res.Document != nil {
			continue
		}
		res.Document = res.render()
		c.snap.resources[res.Path] = append(c.snap.resources[res.Path], res)
	}
}

// prmDocument is RFC 9728 §2's metadata, members in the order written.
type prmDocument struct {
	Resource             string   `json:"resource"`
	AuthorizationServers []string `json:"authorization_servers"`
	ScopesSupported      []string `json:"scopes_supported,omitempty"`
	// Tokens in a form body or the query are refused beside the header,
	// so the header is the only method.
	BearerMethods []string `json:"bearer_methods_supported"`
	ResourceName  string   `json:"resource_name,omitempty"`
	ResourceDocs  string   `json:"resource_documentation,omitempty"`
	DPoPAlgs      []string `json:"dpop_signing_alg_values_supported,omitempty"`
	DPoPRequired  bool     `json:"dpop_bound_access_tokens_required,omitempty"`
}

func (res *ProtectedResource) render() []byte {
	doc := prmDocument{
		Resource:             res.Resource,
		AuthorizationServers: res.spec.GetAuthorizationServers(),
		ScopesSupported:      res.spec.GetScopesSupported(),
		BearerMethods:        []string{"header"},
		ResourceName:         res.spec.GetResourceName(),
		ResourceDocs:         res.spec.GetResourceDocumentation(),
	}
	if len(doc.ScopesSupported) == 0 {
		// The scopes the resource's rules require: what a client must ask
		// for to get in anywhere.
		for _, r := range res.rules {
			for _, s := range r.Bearer.Scopes {
				if !slices.Contains(doc.ScopesSupported, s) {
					doc.ScopesSupported = append(doc.ScopesSupported, s)
				}
			}
		}
	}
	if dp := res.Rule.Bearer.DPoP; dp != nil {
		doc.DPoPAlgs = dp.Proof.Algorithms
		doc.DPoPRequired = dp.Required
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// Strings and string lists always encode.
	_ = enc.Encode(doc)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// parseResource checks a resource identifier (RFC 9728 §1.2: an https URL
// with no fragment; we refuse a query too, because the document path of
// one is ambiguous across clients) and returns its host name (lower-case,
// no port), its authority as written and its path ("/" when it has none).
// The identifier goes into a quoted header parameter, so its characters
// are held to RFC 3986's.
func parseResource(s string) (host, authority, path, msg string) {
	if s == "" {
		return "", "", "", "required: the resource's https URL"
	}
	host, authority, path, msg = httpsURL(s)
	if msg != "" {
		return "", "", "", msg
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "." || seg == ".." {
			return "", "", "", fmt.Sprintf("%q has a dot segment; Envoy normalises those away, so no request would reach the resource as named", s)
		}
	}
	return host, authority, path, ""
}

// issuerURL checks an authorization server's issuer identifier (RFC 8414
// §2: https, no query, no fragment).
func issuerURL(s string) string {
	_, _, _, msg := httpsURL(s)
	return msg
}

// httpsURL splits an absolute https URL without userinfo, query or
// fragment whose characters are all RFC 3986 ones.
func httpsURL(s string) (host, authority, path, msg string) {
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok {
		return "", "", "", fmt.Sprintf("must be an absolute https:// URL, got %q", s)
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '?':
			return "", "", "", fmt.Sprintf("%q has a query; leave it out", s)
		case ch == '#':
			return "", "", "", fmt.Sprintf("%q has a fragment; leave it out", s)
		case ch == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", "", "", fmt.Sprintf("%q has a bad percent-encoding", s)
			}
		case !uriChar(ch):
			return "", "", "", fmt.Sprintf("%q has a character a URL may not hold (%q); percent-encode it", s, ch)
		}
	}
	authority, path = rest, "/"
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	if strings.Contains(authority, "@") {
		return "", "", "", fmt.Sprintf("%q has user information; leave it out", s)
	}
	host = authority
	if i := strings.LastIndexByte(authority, ':'); i >= 0 && !strings.HasSuffix(authority, "]") {
		host = authority[:i]
		port := authority[i+1:]
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return "", "", "", fmt.Sprintf("%q has a bad port", s)
		}
	}
	if host == "" || strings.ContainsAny(host, "%") {
		return "", "", "", fmt.Sprintf("%q has no host name", s)
	}
	return strings.ToLower(host), authority, path, ""
}

// uriChar reports whether ch is an RFC 3986 unreserved, sub-delims or
// gen-delims character (percent signs are checked by the caller).
func uriChar(ch byte) bool {
	switch {
	case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/[]", ch) >= 0
}

func isHex(ch byte) bool {
	return ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f' || ch >= 'A' && ch <= 'F'
}
