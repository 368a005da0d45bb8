package policy

import policyv1 "github.com/extauthz/extauthz/proto/extauthz/policy/v1"

// The schema names a few fields ahead of the code that enforces them. A
// field that is set but not enforced would let an operator believe a
// check happens that does not (acr_values ignored is a hole), so each is a
// load error until its enforcement lands; the list shrinks as it does.

const unbuilt = "not supported by this version of extauthz yet"

func refuseUnbuiltIssuer(el *errorList, path string, pi *policyv1.Issuer) {
	if pi.GetIntrospection() != nil {
		el.add(path+".introspection", unbuilt)
	}
}

func refuseUnbuiltRule(el *errorList, path string, pr *policyv1.Rule) {
	if pr.GetInternalToken() != nil {
		el.add(path+".internal_token", unbuilt)
	}
	if pr.GetProtectedResource() != nil {
		el.add(path+".protected_resource", unbuilt)
	}
	if b := pr.GetBearer(); len(b.GetAcrValues()) > 0 {
		el.add(path+".bearer.acr_values", unbuilt)
	}
	if b := pr.GetBearer(); b.GetMaxAge() != nil {
		el.add(path+".bearer.max_age", unbuilt)
	}
}
