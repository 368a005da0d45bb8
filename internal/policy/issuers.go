package policy

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/extauthz/extauthz/internal/keys"
	policyv1 "github.com/extauthz/extauthz/proto/extauthz/policy/v1"
)

// issuer compiles one issuer. Relative key file paths are taken from dir,
// the policy file's directory, so a policy and its keys move together (as
// they do in a ConfigMap).
func (c *compiler) issuer(el *errorList, dir, path string, pi *policyv1.Issuer) {
	name := pi.GetName()
	switch {
	case name == "":
		el.add(path+".name", "required")
		return
	case c.snap.Issuers[name] != nil || c.broken[name]:
		el.add(path+".name", "issuer %q is defined more than once", name)
		return
	}
	c.issuerBody(el, dir, path, pi)
	if c.snap.Issuers[name] == nil {
		c.broken[name] = true
	}
}

// issuerBody compiles the issuer named pi.Name, which is new, and adds it
// to the snapshot unless it has an error.
func (c *compiler) issuerBody(el *errorList, dir, path string, pi *policyv1.Issuer) {
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	name := pi.GetName()
	is := &Issuer{
		Name:      name,
		Iss:       pi.GetIssuer(),
		ClockSkew: defaultClockSkew,
		ClientIDs: pi.GetClientIds(),
	}
	if d := pi.GetClockSkew(); d != nil {
		is.ClockSkew = d.AsDuration()
	}
	spec := keys.Spec{
		Name:              name,
		Issuer:            pi.GetIssuer(),
		CAFile:            rel(pi.GetCaFile()),
		AllowInsecureHTTP: pi.GetAllowInsecureHttp(),
	}
	if isTemplate(is.Iss) || len(pi.GetIssuerVariables()) > 0 {
		if !c.templateIssuer(el, path, pi, is) {
			return
		}
	}
	hmac := false
	switch src := pi.GetKeySource().(type) {
	case nil:
		if pi.GetIntrospection() == nil {
			el.add(path, "a key source is required: one of jwks_uri, jwks, jwks_file, pem_file, hmac_secret_file, discovery, spiffe")
			return
		}
		is.noKeys = true
	case *policyv1.Issuer_JwksUri:
		if u, err := url.Parse(src.JwksUri); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			el.add(path+".jwks_uri", "must be an absolute https:// URL, got %q", src.JwksUri)
			return
		}
		spec.JWKSURI = src.JwksUri
	case *policyv1.Issuer_Jwks:
		b, err := protojson.Marshal(src.Jwks)
		if err != nil {
			el.add(path+".jwks", "%v", err)
			return
		}
		spec.JWKS = b
	case *policyv1.Issuer_JwksFile:
		spec.JWKSFile = rel(src.JwksFile)
	case *policyv1.Issuer_PemFile:
		spec.PEMFile = rel(src.PemFile)
	case *policyv1.Issuer_HmacSecretFile:
		spec.HMACSecretFile = rel(src.HmacSecretFile)
		hmac = true
	case *policyv1.Issuer_Discovery:
		if !src.Discovery {
			el.add(path+".discovery", "set it to true, or choose another key source")
			return
		}
		if is.Iss == "" {
			el.add(path+".issuer", "required with discovery: keys are discovered at {issuer}/.well-known/openid-configuration")
			return
		}
		spec.Discovery = true
	case *policyv1.Issuer_Spiffe:
		sp, ok := spiffeSpec(el, path+".spiffe", src.Spiffe, rel)
		if !ok {
			return
		}
		if td := pi.GetSpiffeTrustDomain(); td != "" && td != sp.TrustDomain {
			el.add(path+".spiffe_trust_domain", "differs from spiffe.trust_domain %q; leave it out with a spiffe source", sp.TrustDomain)
			return
		}
		spec.SPIFFE = sp
		is.TrustDomain = sp.TrustDomain
	}
	if td := pi.GetSpiffeTrustDomain(); td != "" {
		if _, err := spiffeid.TrustDomainFromString(td); err != nil || strings.Contains(td, "://") {
			el.add(path+".spiffe_trust_domain", "not a valid trust domain name: %q", td)
			return
		}
		is.TrustDomain = td
	}
	if is.Iss == "" && !is.IssuesSVIDs() {
		el.add(path+".issuer", "required (only JWT-SVID issuers may omit it)")
		return
	}
	for sub, id := range pi.GetClientIds() {
		if sub == "" || id == "" {
			el.add(path+".client_ids", "subjects and client ids must not be empty")
		}
	}
	if c.plane != nil && !is.noKeys {
		src, err := c.plane.Source(spec)
		if err != nil {
			el.add(path, "%v", err)
			return
		}
		is.Keys = src
		if spec.JWKSURI != "" || spec.Discovery || spec.SPIFFE != nil {
			c.snap.remote = append(c.snap.remote, src)
		}
	}
	is.Algorithms = c.algorithms(el, path+".algorithms", pi.GetAlgorithms(), hmac, is.Keys)
	if !c.introspection(el, path, pi, is, spec, rel) {
		return
	}
	c.snap.Issuers[name] = is
}

// spiffeSpec validates a spiffe block: a trust domain and exactly one
// bundle source.
func spiffeSpec(el *errorList, path string, ps *policyv1.Spiffe, rel func(string) string) (*keys.SPIFFESpec, bool) {
	td := ps.GetTrustDomain()
	if _, err := spiffeid.TrustDomainFromString(td); err != nil || td == "" || strings.Contains(td, "://") {
		el.add(path+".trust_domain", "required: a trust domain name such as example.org, got %q", td)
		return nil, false
	}
	sp := &keys.SPIFFESpec{TrustDomain: td}
	switch b := ps.GetBundleSource().(type) {
	case nil:
		el.add(path, "a bundle source is required: one of workload_api_socket, bundle_endpoint, bundle_file")
		return nil, false
	case *policyv1.Spiffe_WorkloadApiSocket:
		if !strings.HasPrefix(b.WorkloadApiSocket, "unix://") && !strings.HasPrefix(b.WorkloadApiSocket, "tcp://") {
			el.add(path+".workload_api_socket", "must be unix:///path or tcp://host:port, got %q", b.WorkloadApiSocket)
			return nil, false
		}
		sp.WorkloadAPISocket = b.WorkloadApiSocket
	case *policyv1.Spiffe_BundleEndpoint:
		u, err := url.Parse(b.BundleEndpoint.GetUrl())
		if err != nil || u.Scheme != "https" || u.Host == "" {
			el.add(path+".bundle_endpoint.url", "must be an https:// URL, got %q", b.BundleEndpoint.GetUrl())
			return nil, false
		}
		if id := b.BundleEndpoint.GetSpiffeId(); id != "" {
			if _, err := spiffeid.FromString(id); err != nil {
				el.add(path+".bundle_endpoint.spiffe_id", "not a SPIFFE ID: %v", err)
				return nil, false
			}
		}
		sp.BundleEndpointURL = b.BundleEndpoint.GetUrl()
		sp.BundleEndpointSPIFFEID = b.BundleEndpoint.GetSpiffeId()
	case *policyv1.Spiffe_BundleFile:
		sp.BundleFile = rel(b.BundleFile)
	}
	return sp, true
}

// algorithms compiles an issuer's allow-list. For an hmac_secret_file
// issuer, src (nil without a key plane) tells the secret's length, and RFC
// 7518 section 3.2 wants a secret at least as long as the hash: an algorithm
// listed that the secret is too short for is a load error, and the default is
// the HS algorithms it is long enough for, so a policy with a 32-byte secret
// and no list keeps loading, with HS256 only. A file holding no secret (an
// emptied, revoked one) has no length to fit: every HS algorithm stays, and
// keys.Key.Fits refuses at run time whatever a later secret is too short for.
func (c *compiler) algorithms(el *errorList, path string, given []string, hmac bool, src keys.Source) []string {
	allowed := keys.AlgorithmNames(false, true)
	secret := 0
	if hmac {
		allowed = keys.AlgorithmNames(true, true)
		if sz, ok := src.(keys.SecretSizer); ok {
			secret = sz.SecretLen()
		}
	}
	long := func(a string) bool { return secret == 0 || secret >= keys.MinHMACSecretLen(a) }
	if len(given) == 0 {
		if secret == 0 {
			return allowed
		}
		out := make([]string, 0, len(allowed))
		for _, a := range allowed {
			if long(a) {
				out = append(out, a)
			}
		}
		return out
	}
	out := make([]string, 0, len(given))
	for i, a := range given {
		alg, ok := keys.LookupAlgorithm(a)
		ok = ok && alg.Symmetric() == hmac
		switch {
		case strings.EqualFold(a, "none"):
			el.add(fmt.Sprintf("%s[%d]", path, i), "\"none\" is never accepted")
		case !ok && hmac:
			el.add(fmt.Sprintf("%s[%d]", path, i), "%q does not fit an HMAC secret; use HS256, HS384 or HS512", a)
		case !ok:
			el.add(fmt.Sprintf("%s[%d]", path, i), "%q is not a supported public-key algorithm (one of %s)", a, strings.Join(keys.AlgorithmNames(false, false), ", "))
		case !long(a):
			el.add(fmt.Sprintf("%s[%d]", path, i), "%s needs a secret of at least %d bytes; hmac_secret_file has %d", a, keys.MinHMACSecretLen(a), secret)
		default:
			out = append(out, a)
		}
	}
	return out
}
