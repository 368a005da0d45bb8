package policy

import (
	"errors"
	"strings"
	"time"

	"github.com/extauthz/extauthz/internal/dpop"
	"github.com/extauthz/extauthz/internal/introspect"
	"github.com/extauthz/extauthz/internal/keys"
)

// ErrUnknownRule means Envoy named a rule (context_extensions "rule") that
// the policy does not have. It is a deny, never a fallback to matching.
var ErrUnknownRule = errors.New("policy: unknown rule")

// Snapshot is one compiled, immutable policy. Nothing in it changes after
// Load returns, so Checks share it without locks.
type Snapshot struct {
	// Hash is the SHA-256 (hex) of the files' names and contents, in load order.
	Hash string
	// LoadedAt is when the files were compiled.
	LoadedAt time.Time
	// Files are the files loaded, in load order.
	Files []string

	Issuers      map[string]*Issuer
	Rules        []*Rule
	DefaultAllow bool
	// Realm is the realm of WWW-Authenticate challenges.
	Realm string
	// Managed lists every header name that any rule sets or strip_headers
	// names, lower-case, each with its `_` spelling too. An allowed request
	// has all of them removed except those its rule sets.
	Managed []string

	ruleByName map[string]*Rule
	// resources are the RFC 9728 documents by path (resource.go).
	resources map[string][]*ProtectedResource
	// remote are the key sources worth prefetching before the snapshot serves.
	remote []keys.Source
}

// Issuer is a compiled issuer.
type Issuer struct {
	Name string
	// Iss is the exact `iss` value; "" for a JWT-SVID issuer that takes
	// tokens by the trust domain of their `sub`.
	Iss  string
	Keys keys.Source
	// Algorithms is the allow-list of `alg` values.
	Algorithms []string
	ClockSkew  time.Duration
	ClientIDs  map[string]string
	// TrustDomain is set for issuers of JWT-SVIDs: `sub` must be a SPIFFE ID
	// in it.
	TrustDomain string
	// Template is set when Iss has {variables}: one issuer per tenant over
	// one key set.
	Template *Template
	// Introspect is set for an issuer of opaque tokens (RFC 7662); such an
	// issuer may have no key source (noKeys).
	Introspect *introspect.Client
	noKeys     bool
}

// Allows reports whether alg is on the issuer's allow-list.
func (is *Issuer) Allows(alg string) bool {
	for _, a := range is.Algorithms {
		if a == alg {
			return true
		}
	}
	return false
}

// IssuesSVIDs reports whether the issuer's tokens are JWT-SVIDs.
func (is *Issuer) IssuesSVIDs() bool { return is.TrustDomain != "" }

// Rule is a compiled rule.
type Rule struct {
	Name  string
	Match Match
	// ClientAssertion and Bearer are nil when the rule does not accept that
	// credential; both nil is a public route.
	ClientAssertion *ClientAssertion
	Bearer          *Bearer
	Require         []*Expr
	Headers         []*HeaderExpr
	// InternalToken, when set, is minted on every allow (internaltoken.go).
	InternalToken *InternalToken
	// AuthorizationGrant, when set, verifies an RFC 7523 §2.1 JWT bearer
	// grant (grant.go); its sub is the user, never the client.
	AuthorizationGrant *ClientAssertion
	// Metadata are extra dynamic_metadata members of an allow.
	Metadata []*MetadataExpr
	// Audit rules evaluate everything but always allow.
	Audit bool
	// Resource is the rule's RFC 9728 metadata, nil when it has none.
	Resource *ProtectedResource
	// Remove is Managed less the rule's own headers: what an allow removes
	// when every header of the rule has a value. Computed once, shared
	// read-only by every Check.
	Remove []string
	// usesRequest is true when an expression reads the `request` variable,
	// so Checks build that map only when it is needed.
	usesRequest bool
}

// SetHeaders is how many headers an allow of the rule sets when every one
// has a value: its headers and its internal token.
func (r *Rule) SetHeaders() int {
	if r.InternalToken != nil {
		return len(r.Headers) + 1
	}
	return len(r.Headers)
}

// UsesRequest reports whether any of the rule's expressions reads `request`.
func (r *Rule) UsesRequest() bool { return r.usesRequest }

// Credential is what both kinds of credential rule share: which issuers they
// trust and which audiences they accept.
type Credential struct {
	Issuers   []*Issuer
	Audiences []string
	byIss     map[string]*Issuer
	byDomain  map[string]*Issuer
	// templates are the templated issuers, in load order, tried after the
	// exact ones.
	templates []*Issuer
}

// IssuerFor finds the issuer of a token among the rule's issuers: by its
// exact `iss`, or, for JWT-SVID issuers configured without one, by the trust
// domain of the token's SPIFFE ID (trustDomain, "" when sub is none).
func (c *Credential) IssuerFor(iss string, hasIss bool, trustDomain string) *Issuer {
	if hasIss {
		if is, ok := c.byIss[iss]; ok {
			return is
		}
	}
	if trustDomain != "" {
		return c.byDomain[trustDomain]
	}
	return nil
}

// MatchIssuer is IssuerFor with templated issuers: exact matches first
// (allocation-free, vars nil), then templates in load order. A token whose
// iss has a template's shape but a value its variables refuse returns that
// issuer with ok false, so the caller can deny before any key lookup.
func (c *Credential) MatchIssuer(iss string, hasIss bool, trustDomain string) (is *Issuer, vars map[string]string, ok bool) {
	if is := c.IssuerFor(iss, hasIss, trustDomain); is != nil {
		return is, nil, true
	}
	if !hasIss {
		return nil, nil, false
	}
	for _, t := range c.templates {
		vars, shape, ok := t.Template.Match(iss)
		if shape {
			return t, vars, ok
		}
	}
	return nil, nil, false
}

// HasAudience reports whether aud is one of the rule's audiences.
func (c *Credential) HasAudience(aud string) bool {
	for _, a := range c.Audiences {
		if a == aud {
			return true
		}
	}
	return false
}

// ClientAssertion is a compiled client_assertion requirement.
type ClientAssertion struct {
	Credential
	MaxLifetime time.Duration
	// StrictTyping requires typ client-authentication+jwt and refuses
	// access-token claims.
	StrictTyping bool
	// DPoP is nil when proofs beside the assertion are not checked.
	DPoP *DPoP
	// PeerSVID binds a JWT-SVID assertion to the peer's X.509-SVID.
	PeerSVID bool
	// replay is nil when unset: on for ordinary issuers, off for JWT-SVID
	// issuers.
	replay *bool
}

// ReplayProtected reports whether tokens of is must carry a jti that is
// accepted once.
func (c *ClientAssertion) ReplayProtected(is *Issuer) bool {
	if c.replay != nil {
		return *c.replay
	}
	return !is.IssuesSVIDs()
}

// Bearer is a compiled bearer requirement.
type Bearer struct {
	Credential
	Scopes []string
	// Challenge is the precomputed `scope="..."` value of insufficient_scope.
	ScopeList string
	// DPoP is nil when the rule takes no DPoP-bound tokens (mode off).
	DPoP *DPoP
	// PeerSVID binds a JWT-SVID bearer token to the peer's X.509-SVID.
	PeerSVID bool
	// AllowCredentialParams skips the search for credential parameters
	// beyond their exact names.
	AllowCredentialParams bool
	// RFC9068 holds tokens of non-SVID issuers to RFC 9068's profile.
	RFC9068 bool
	// StepUp is nil when the rule sets neither acr_values nor max_age.
	StepUp *StepUp
}

// DPoP is a compiled dpop block whose mode is optional or required.
type DPoP struct {
	Required bool
	// Nonce requires a server-issued nonce in every proof.
	Nonce bool
	// Proof holds the algorithms and iat window; a Check copies it and adds
	// the access token and the nonce issuer.
	Proof dpop.Options
	// Algs is the challenge's algs="..." value: the allow-list, space
	// separated.
	Algs string
}

// Match is a compiled match block.
type Match struct {
	hostsExact  map[string]bool
	hostsSuffix []string
	paths       map[string]bool
	prefixes    []string
	methods     map[string]bool
}

// Request is what matching and CEL see of the HTTP request.
type Request struct {
	Method string
	// Host is lower-case, without port.
	Host string
	// Path is without the query string, as Envoy normalised it.
	Path  string
	Query string
	// Headers have lower-case names; repeated headers are joined with ",".
	// When it is nil, the headers are Pairs.
	Headers map[string]string
	// Pairs are the headers in the order Envoy listed them, lower-case, a
	// later one replacing an earlier of the same name: a Check reads a few
	// headers, so no map is built unless an expression reads
	// request.headers.
	Pairs []HeaderPair
}

// HeaderPair is one header of Request.Pairs.
type HeaderPair struct{ Name, Value string }

// Header is the value of the header name (lower-case).
func (r *Request) Header(name string) (string, bool) {
	if r.Headers != nil {
		v, ok := r.Headers[name]
		return v, ok
	}
	for i := len(r.Pairs) - 1; i >= 0; i-- {
		if r.Pairs[i].Name == name {
			return r.Pairs[i].Value, true
		}
	}
	return "", false
}

// HeaderMap is the headers as a map, built from Pairs when there is none.
func (r *Request) HeaderMap() map[string]string {
	if r.Headers != nil || len(r.Pairs) == 0 {
		return r.Headers
	}
	m := make(map[string]string, len(r.Pairs))
	for _, p := range r.Pairs {
		m[p.Name] = p.Value
	}
	return m
}

// Holds reports whether every condition of m holds for req.
func (m *Match) Holds(req *Request) bool {
	if m.hostsExact != nil || m.hostsSuffix != nil {
		ok := m.hostsExact[req.Host]
		for _, s := range m.hostsSuffix {
			if !ok && wildcardMatch(req.Host, s) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	// paths and path_prefixes are separate conditions, each of which must
	// hold when given, as the spec says of every match field.
	if m.paths != nil && !m.paths[req.Path] {
		return false
	}
	if m.prefixes != nil {
		ok := false
		for _, p := range m.prefixes {
			if strings.HasPrefix(req.Path, p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if m.methods != nil && !m.methods[req.Method] {
		return false
	}
	return true
}

// wildcardMatch reports whether host matches the pattern *suffix (suffix
// starts with "."): the * stands for one or more labels, none of them
// empty, so *.admin.example.com matches a.admin.example.com and
// a.b.admin.example.com but neither .admin.example.com nor
// a..admin.example.com.
func wildcardMatch(host, suffix string) bool {
	if len(host) <= len(suffix) || !strings.HasSuffix(host, suffix) {
		return false
	}
	labels := host[:len(host)-len(suffix)]
	return labels[0] != '.' && labels[len(labels)-1] != '.' && !strings.Contains(labels, "..")
}

// Select returns the rule for req: the one named by Envoy's
// context_extensions when name is non-empty (ErrUnknownRule if there is
// none), else the first whose match holds, else nil (the default action).
func (s *Snapshot) Select(name string, req *Request) (*Rule, error) {
	if name != "" {
		if r, ok := s.ruleByName[name]; ok {
			return r, nil
		}
		return nil, ErrUnknownRule
	}
	for _, r := range s.Rules {
		if r.Match.Holds(req) {
			return r, nil
		}
	}
	return nil, nil
}

// RemoteSources are the key sources that fetch over the network, for the
// caller to prefetch before serving the snapshot.
func (s *Snapshot) RemoteSources() []keys.Source { return s.remote }
