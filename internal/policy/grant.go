package policy

import (
	"fmt"
	"slices"

	policyv1 "github.com/extauthz/extauthz/proto/extauthz/policy/v1"
)

// tokenEndpointRule compiles what a token-endpoint rule adds to a rule: the
// RFC 7523 §2.1 authorization grant, the metadata members, and the checks
// that `form` and `grant` are read only where they have a value.
func (c *compiler) tokenEndpointRule(el *errorList, path string, pr *policyv1.Rule, r *Rule) {
	if ag := pr.GetAuthorizationGrant(); ag != nil {
		gpath := path + ".authorization_grant"
		g := &ClientAssertion{MaxLifetime: defaultMaxLifetime}
		g.Credential = c.credential(el, gpath, ag.GetIssuers(), ag.GetAudiences())
		needKeySources(el, gpath+".issuers", &g.Credential, "authorization grants")
		g.MaxLifetime = positive(el, gpath+".max_lifetime", ag.GetMaxLifetime(), defaultMaxLifetime)
		if ag.ReplayProtection != nil {
			v := ag.GetReplayProtection()
			g.replay = &v
		}
		// The grant names a user; DPoP and the peer's SVID bind the
		// client, which client_assertion authenticates.
		if ag.GetDpop() != nil {
			el.add(gpath+".dpop", "a DPoP proof binds the client, not the user's grant; set dpop on client_assertion")
		}
		if ag.GetPeerSvid() {
			el.add(gpath+".peer_svid", "peer_svid binds the client, not the user's grant; set peer_svid on client_assertion")
		}
		if ag.GetStrictTyping() {
			el.add(gpath+".strict_typing", "no explicit JWT type is defined for authorization grants; a grant's typ must be absent or JWT whatever this says, so leave it out")
		}
		if pr.GetBearer() != nil {
			el.add(gpath, "a token endpoint rule; it cannot also take bearer tokens (use two rules)")
		}
		r.AuthorizationGrant = g
	}
	c.metadata(el, path, pr, r)
	tokenEndpoint := r.ClientAssertion != nil || r.AuthorizationGrant != nil
	check := func(epath string, e *Expr) {
		switch {
		case e.Reads("form") && !tokenEndpoint:
			el.add(epath, "reads form, which only token-endpoint rules (client_assertion or authorization_grant) have")
		case e.Reads("grant") && r.AuthorizationGrant == nil:
			el.add(epath, "reads grant, which only rules with authorization_grant have")
		}
	}
	for i, e := range r.Require {
		check(fmt.Sprintf("%s.require[%d]", path, i), e)
	}
	for _, h := range r.Headers {
		check(fmt.Sprintf("%s.headers[%q]", path, h.Name), &h.Expr)
	}
	for _, m := range r.Metadata {
		check(fmt.Sprintf("%s.metadata[%q]", path, m.Name), &m.Expr)
	}
}

// Reads reports whether the expression reads the variable name.
func (e *Expr) Reads(name string) bool { return slices.Contains(e.reads, name) }
