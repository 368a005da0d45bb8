package policy

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/extauthz/extauthz/internal/dpop"
	"github.com/extauthz/extauthz/internal/introspect"
	"github.com/extauthz/extauthz/internal/keys"
	policyv1 "github.com/extauthz/extauthz/proto/extauthz/policy/v1"
)

const (
	defaultRealm       = "extauthz"
	defaultClockSkew   = 30 * time.Second
	defaultMaxLifetime = 1800 * time.Second
)

// compiler turns parsed files into a Snapshot, collecting every error.
type compiler struct {
	plane *keys.Plane
	env   *cel.Env
	errs  *[]FieldError
	snap  *Snapshot
	// managed collects header names set by rules or listed in strip_headers.
	managed map[string]bool
	// broken are the issuers that are defined but failed to compile: a rule
	// naming one is not also told there is no such issuer.
	broken map[string]bool
	// resources are the protected_resource blocks by document place.
	resources map[string]*ProtectedResource

	// introspect builds introspection clients; nil makes a plane without
	// metrics on first use.
	introspect *introspect.Plane
}

func compile(files []*file, plane *keys.Plane, ip *introspect.Plane, errs *[]FieldError) *Snapshot {
	env, err := celEnv()
	if err != nil {
		*errs = append(*errs, FieldError{Msg: fmt.Sprintf("CEL environment: %v", err)})
		return nil
	}
	c := &compiler{
		plane: plane,
		env:   env,
		errs:  errs,
		snap: &Snapshot{
			Issuers:    map[string]*Issuer{},
			ruleByName: map[string]*Rule{},
			Realm:      defaultRealm,
		},
		managed: map[string]bool{},
		broken:  map[string]bool{},
	}
	c.introspect = ip
	// Issuers first, from every file, so a rule may name an issuer of a file
	// loaded after its own.
	for _, f := range files {
		el := &errorList{file: f.name, src: f.src, errs: errs}
		dir := filepath.Dir(f.name)
		for i, is := range f.pf.GetIssuers() {
			c.issuer(el, dir, fmt.Sprintf("issuers[%d]", i), is)
		}
	}
	var realmFile, actionFile string
	for _, f := range files {
		el := &errorList{file: f.name, src: f.src, errs: errs}
		for i, r := range f.pf.GetRules() {
			c.rule(el, fmt.Sprintf("rules[%d]", i), r)
		}
		if a := f.pf.GetDefaultAction(); a != "" {
			switch {
			case actionFile != "":
				el.add("default_action", "already set in %s; set it in one file only", actionFile)
			case a == "allow":
				c.snap.DefaultAllow = true
			case a != "deny":
				el.add("default_action", "must be \"deny\" or \"allow\", got %q", a)
			}
			actionFile = f.name
		}
		if realm := f.pf.GetRealm(); realm != "" {
			switch {
			case realmFile != "":
				el.add("realm", "already set in %s; set it in one file only", realmFile)
			case strings.ContainsAny(realm, "\"\\\r\n\x00"):
				el.add("realm", "must not contain quotes, backslashes or control characters")
			default:
				c.snap.Realm = realm
			}
			realmFile = f.name
		}
		for i, h := range f.pf.GetStripHeaders() {
			hpath := fmt.Sprintf("strip_headers[%d]", i)
			if name, ok := c.headerName(el, hpath, h); ok {
				c.manage(el, hpath, name)
			}
		}
	}
	c.renderResources()
	for name := range c.managed {
		c.snap.Managed = append(c.snap.Managed, name)
	}
	sort.Strings(c.snap.Managed)
	for _, r := range c.snap.Rules {
		r.Remove = make([]string, 0, len(c.snap.Managed))
	next:
		for _, m := range c.snap.Managed {
			if r.InternalToken != nil && r.InternalToken.Header == m {
				continue // overwritten on every allow, or the request is denied
			}
			for _, h := range r.Headers {
				if h.Name == m {
					continue next
				}
			}
			r.Remove = append(r.Remove, m)
		}
	}
	return c.snap
}

func (c *compiler) rule(el *errorList, path string, pr *policyv1.Rule) {
	name := pr.GetName()
	switch {
	case name == "":
		el.add(path+".name", "required")
		return
	case c.snap.ruleByName[name] != nil:
		el.add(path+".name", "rule %q is defined more than once", name)
		return
	}
	r := &Rule{Name: name}
	r.Match = c.match(el, path+".match", pr.GetMatch())
	if ca := pr.GetClientAssertion(); ca != nil {
		r.ClientAssertion = &ClientAssertion{MaxLifetime: defaultMaxLifetime}
		r.ClientAssertion.Credential = c.credential(el, path+".client_assertion", ca.GetIssuers(), ca.GetAudiences())
		needKeySources(el, path+".client_assertion.issuers", &r.ClientAssertion.Credential, "client assertions")
		r.ClientAssertion.MaxLifetime = positive(el, path+".client_assertion.max_lifetime", ca.GetMaxLifetime(), defaultMaxLifetime)
		if ca.ReplayProtection != nil {
			v := ca.GetReplayProtection()
			r.ClientAssertion.replay = &v
		}
		r.ClientAssertion.StrictTyping = ca.GetStrictTyping()
		r.ClientAssertion.DPoP = c.dpop(el, path+".client_assertion.dpop", ca.GetDpop())
		r.ClientAssertion.PeerSVID = ca.GetPeerSvid()
		if ca.GetPeerSvid() {
			c.needSVIDIssuer(el, path+".client_assertion.peer_svid", ca.GetIssuers(), &r.ClientAssertion.Credential)
		}
	}
	if b := pr.GetBearer(); b != nil {
		r.Bearer = &Bearer{Scopes: b.GetScopes()}
		r.Bearer.Credential = c.credential(el, path+".bearer", b.GetIssuers(), b.GetAudiences())
		introspectionIssuer(el, path+".bearer.issuers", &r.Bearer.Credential)
		for i, s := range b.GetScopes() {
			if !IsScopeToken(s) {
				el.add(fmt.Sprintf("%s.bearer.scopes[%d]", path, i), "not a valid scope token (RFC 6749 §3.3: printable ASCII without space, '\"' or '\\'): %q", s)
			}
		}
		r.Bearer.ScopeList = strings.Join(b.GetScopes(), " ")
		r.Bearer.DPoP = c.dpop(el, path+".bearer.dpop", b.GetDpop())
		r.Bearer.PeerSVID = b.GetPeerSvid()
		r.Bearer.AllowCredentialParams = b.GetAllowCredentialParameters()
		switch b.GetProfile() {
		case "":
		case "rfc9068":
			r.Bearer.RFC9068 = true
		default:
			el.add(path+".bearer.profile", "must be \"rfc9068\" or left out, got %q", b.GetProfile())
		}
		if b.GetPeerSvid() {
			c.needSVIDIssuer(el, path+".bearer.peer_svid", b.GetIssuers(), &r.Bearer.Credential)
		}
		r.Bearer.StepUp = stepUp(el, path+".bearer", b)
	}
	for i, src := range pr.GetRequire() {
		e, uses, msg := compileExpr(c.env, src, true)
		if msg != "" {
			c.exprError(el, fmt.Sprintf("%s.require[%d]", path, i), src, msg)
			continue
		}
		r.usesRequest = r.usesRequest || uses
		r.Require = append(r.Require, e)
	}
	names := make([]string, 0, len(pr.GetHeaders()))
	for h := range pr.GetHeaders() {
		names = append(names, h)
	}
	sort.Strings(names)
	seen := map[string]bool{}
	for _, h := range names {
		hpath := fmt.Sprintf("%s.headers[%q]", path, h)
		lname, ok := c.headerName(el, hpath, h)
		if !ok {
			continue
		}
		if seen[lname] {
			el.add(hpath, "header %q is set twice (names are case-insensitive)", lname)
			continue
		}
		seen[lname] = true
		e, uses, msg := compileExpr(c.env, pr.GetHeaders()[h], false)
		if msg != "" {
			c.exprError(el, hpath, pr.GetHeaders()[h], msg)
			continue
		}
		r.usesRequest = r.usesRequest || uses
		r.Headers = append(r.Headers, &HeaderExpr{Name: lname, Expr: *e})
		c.manage(el, hpath, lname)
	}
	r.InternalToken = c.internalToken(el, path+".internal_token", pr.GetInternalToken())
	if it := r.InternalToken; it != nil && seen[it.Header] {
		el.add(path+".internal_token.header", "header %q is also set by headers; name another", it.Header)
	}
	switch pr.GetMode() {
	case "", "enforce":
	case "audit":
		r.Audit = true
	default:
		el.add(path+".mode", "must be \"enforce\" or \"audit\", got %q", pr.GetMode())
	}
	c.protectedResource(el, path, pr, r)
	c.tokenEndpointRule(el, path, pr, r)
	c.snap.ruleByName[name] = r
	c.snap.Rules = append(c.snap.Rules, r)
}

// dpop compiles a dpop block; nil when proofs are off.
func (c *compiler) dpop(el *errorList, path string, pd *policyv1.DPoP) *DPoP {
	if pd == nil {
		return nil
	}
	d := &DPoP{Nonce: pd.GetNonce()}
	switch pd.GetMode() {
	case "off", "":
		if len(pd.GetAlgorithms()) > 0 || pd.GetMaxAge() != nil || pd.GetClockSkew() != nil || pd.GetNonce() {
			el.add(path+".mode", "is off, so the other dpop settings do nothing; set mode to optional or required, or remove them")
		}
		return nil
	case "optional":
	case "required":
		d.Required = true
	default:
		// Go on, so that validate lists the block's other errors too.
		el.add(path+".mode", "must be \"off\", \"optional\" or \"required\", got %q", pd.GetMode())
	}
	for i, a := range pd.GetAlgorithms() {
		apath := fmt.Sprintf("%s.algorithms[%d]", path, i)
		alg, known := keys.LookupAlgorithm(a)
		switch {
		case strings.EqualFold(a, "none"):
			el.add(apath, "\"none\" is never accepted")
		case known && alg.Symmetric():
			el.add(apath, "%q is symmetric; a DPoP proof is signed with the client's private key and verified with the public key it carries (one of %s)", a, strings.Join(dpop.DefaultAlgorithms, ", "))
		case !known:
			el.add(apath, "%q is not a supported proof algorithm (one of %s)", a, strings.Join(dpop.DefaultAlgorithms, ", "))
		default:
			d.Proof.Algorithms = append(d.Proof.Algorithms, a)
		}
	}
	if len(d.Proof.Algorithms) == 0 {
		d.Proof.Algorithms = dpop.DefaultAlgorithms
	}
	d.Algs = strings.Join(d.Proof.Algorithms, " ")
	d.Proof.MaxAge = positive(el, path+".max_age", pd.GetMaxAge(), dpop.DefaultMaxAge)
	d.Proof.Skew = positive(el, path+".clock_skew", pd.GetClockSkew(), dpop.DefaultSkew)
	return d
}

// positive reads an optional duration that must be positive.
func positive(el *errorList, path string, d *durationpb.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	if d.AsDuration() <= 0 {
		el.add(path, "must be positive")
	}
	return d.AsDuration()
}

// needSVIDIssuer refuses peer_svid on a credential none of whose issuers
// issues JWT-SVIDs: no token could ever pass it.
func (c *compiler) needSVIDIssuer(el *errorList, path string, names []string, cr *Credential) {
	for _, is := range cr.Issuers {
		if is.IssuesSVIDs() {
			return
		}
	}
	for _, name := range names {
		if c.broken[name] {
			return // it may have been one
		}
	}
	el.add(path, "binds a JWT-SVID to the peer's X.509-SVID, but none of the rule's issuers issues JWT-SVIDs (a spiffe source or spiffe_trust_domain)")
}

func (c *compiler) credential(el *errorList, path string, issuers, audiences []string) Credential {
	cr := Credential{Audiences: audiences, byIss: map[string]*Issuer{}, byDomain: map[string]*Issuer{}}
	if len(issuers) == 0 {
		el.add(path+".issuers", "at least one issuer is required")
	}
	if len(audiences) == 0 {
		el.add(path+".audiences", "at least one audience is required")
	}
	for i, a := range audiences {
		if a == "" {
			el.add(fmt.Sprintf("%s.audiences[%d]", path, i), "must not be empty")
		}
	}
	for i, name := range issuers {
		ipath := fmt.Sprintf("%s.issuers[%d]", path, i)
		is := c.snap.Issuers[name]
		switch {
		case is == nil && c.broken[name]:
			// Its own errors say what is wrong with it.
			continue
		case is == nil:
			el.add(ipath, "no issuer named %q%s", name, c.suggestIssuer(name))
			continue
		}
		cr.Issuers = append(cr.Issuers, is)
		if is.Template != nil {
			cr.templates = append(cr.templates, is)
			continue
		}
		if is.Iss != "" {
			if other := cr.byIss[is.Iss]; other != nil {
				el.add(ipath, "issuers %q and %q both have issuer %q; a token could not tell them apart", other.Name, name, is.Iss)
				continue
			}
			cr.byIss[is.Iss] = is
			continue
		}
		if other := cr.byDomain[is.TrustDomain]; other != nil {
			el.add(ipath, "issuers %q and %q both take tokens of trust domain %q without an issuer; set issuer on one", other.Name, name, is.TrustDomain)
			continue
		}
		cr.byDomain[is.TrustDomain] = is
	}
	return cr
}

// IsScopeToken is RFC 6749 §3.3's scope-token: 1*( %x21 / %x23-5B /
// %x5D-7E ), printable ASCII less space, '"' and '\'.
func IsScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
