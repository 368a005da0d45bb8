package policy

import (
	"fmt"
	"strings"

	"github.com/extauthz/extauthz/internal/introspect"
	"github.com/extauthz/extauthz/internal/keys"
	policyv1 "github.com/extauthz/extauthz/proto/extauthz/policy/v1"
)

// introspection compiles an issuer's introspection block into is.Introspect;
// false when it has an error. It runs once the key source (optional here)
// and the algorithms are compiled, because a jwt_response is verified with
// them.
func (c *compiler) introspection(el *errorList, path string, pi *policyv1.Issuer, is *Issuer, spec keys.Spec, rel func(string) string) bool {
	pin := pi.GetIntrospection()
	if pin == nil {
		return true
	}
	path += ".introspection"
	ok := true
	bad := func(field, format string, args ...any) {
		el.add(path+field, format, args...)
		ok = false
	}
	if is.Iss == "" {
		bad("", "needs issuer: the issuer URL names whose opaque tokens these are")
	}
	if is.Template != nil {
		bad("", "a templated issuer cannot introspect: the endpoint belongs to one issuer URL")
	}
	if pin.GetJwtResponse() && pi.GetKeySource() == nil {
		bad(".jwt_response", "needs the issuer's key source (jwks_uri, discovery, …) to verify the signed responses")
	}
	switch {
	case pin.GetEndpoint() == "" && !pin.GetDiscovery():
		bad(".endpoint", "required unless discovery is true")
	case pin.GetEndpoint() != "" && pin.GetDiscovery():
		bad(".discovery", "give endpoint or discovery, not both")
	case pin.GetEndpoint() != "":
		if _, err := keys.CheckURL(pin.GetEndpoint(), pi.GetAllowInsecureHttp()); err != nil {
			bad(".endpoint", "must be an https:// URL: %v", err)
		}
	}
	pc := pin.GetClient()
	if pc.GetClientId() == "" {
		bad(".client.client_id", "required: extauthz's own client id at the endpoint")
	}
	switch pc.GetMethod() {
	case introspect.ClientSecretBasic:
		if pc.GetClientSecretFile() == "" {
			bad(".client.client_secret_file", "required with client_secret_basic")
		}
	case introspect.PrivateKeyJWT:
		if pc.GetPrivateKeyFile() == "" {
			bad(".client.private_key_file", "required with private_key_jwt")
		}
	case introspect.TLSClientAuth:
		if pc.GetCertFile() == "" || pc.GetKeyFile() == "" {
			bad(".client", "cert_file and key_file are required with tls_client_auth")
		}
	case "":
		bad(".client.method", "required: one of %s, %s, %s", introspect.ClientSecretBasic, introspect.PrivateKeyJWT, introspect.TLSClientAuth)
	default:
		bad(".client.method", "must be one of %s, %s, %s, got %q", introspect.ClientSecretBasic, introspect.PrivateKeyJWT, introspect.TLSClientAuth, pc.GetMethod())
	}
	hint := pin.GetTokenTypeHint()
	switch {
	case hint == "":
		hint = introspect.DefaultTokenTypeHint
	case hint == "none":
		hint = ""
	case !isToken(hint):
		bad(".token_type_hint", "not a token type name: %q", hint)
	}
	size, conc := int(pin.GetCacheSize()), int(pin.GetMaxConcurrency())
	if size < 0 {
		bad(".cache_size", "must be positive")
	}
	if conc < 0 {
		bad(".max_concurrency", "must be positive")
	}
	if size == 0 {
		size = introspect.DefaultCacheSize
	}
	if conc == 0 {
		conc = introspect.DefaultMaxConcurrency
	}
	n := len(*el.errs)
	s := introspect.Spec{
		Name:              is.Name,
		Issuer:            is.Iss,
		Endpoint:          pin.GetEndpoint(),
		Discovery:         pin.GetDiscovery(),
		ClientID:          pc.GetClientId(),
		Method:            pc.GetMethod(),
		ClientSecretFile:  rel(pc.GetClientSecretFile()),
		PrivateKeyFile:    rel(pc.GetPrivateKeyFile()),
		Algorithm:         pc.GetAlgorithm(),
		KeyID:             pc.GetKeyId(),
		CertFile:          rel(pc.GetCertFile()),
		KeyFile:           rel(pc.GetKeyFile()),
		TokenTypeHint:     hint,
		CacheTTL:          positive(el, path+".cache_ttl", pin.GetCacheTtl(), introspect.DefaultCacheTTL),
		NegativeTTL:       positive(el, path+".negative_cache_ttl", pin.GetNegativeCacheTtl(), introspect.DefaultNegativeTTL),
		CacheSize:         size,
		MaxConcurrency:    conc,
		Timeout:           positive(el, path+".timeout", pin.GetTimeout(), introspect.DefaultTimeout),
		JWTResponse:       pin.GetJwtResponse(),
		CAFile:            spec.CAFile,
		AllowInsecureHTTP: spec.AllowInsecureHTTP,
	}
	if len(*el.errs) > n || !ok {
		return false
	}
	if s.JWTResponse {
		s.Keys, s.Algorithms = is.Keys, is.Algorithms
		if s.Keys == nil {
			// No key plane (a lint-only compile): nothing can verify, and
			// nothing will be asked.
			s.JWTResponse = false
		}
	}
	plane := c.introspect
	if plane == nil {
		p, err := introspect.NewPlane(introspect.Config{})
		if err != nil {
			el.add(path, "%v", err)
			return false
		}
		plane, c.introspect = p, p
	}
	client, err := plane.Client(s)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), fmt.Sprintf("introspect: issuer %s: ", is.Name))
		// A file's error is placed at its field, as the others are.
		if field, rest, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(field, "client.") && !strings.ContainsAny(field, " ") {
			el.add(path+"."+field, "%s", rest)
		} else {
			el.add(path, "%s", msg)
		}
		return false
	}
	is.Introspect = client
	return true
}

// introspectionIssuer checks that a bearer rule names at most one
// introspection issuer: an opaque token carries no iss, so with two there
// would be no telling whose endpoint to ask (and asking both would hand
// one issuer's tokens to the other).
func introspectionIssuer(el *errorList, path string, cr *Credential) {
	var first *Issuer
	for _, is := range cr.Issuers {
		if is.Introspect == nil {
			continue
		}
		if first != nil {
			el.add(path, "issuers %q and %q both introspect; an opaque token names no issuer, so a bearer rule may have one introspection issuer", first.Name, is.Name)
			return
		}
		first = is
	}
}

// needKeySources refuses a client assertion or grant naming an issuer with
// no key source (what, for the message): they are always verified locally,
// never introspected.
func needKeySources(el *errorList, path string, cr *Credential, what string) {
	for _, is := range cr.Issuers {
		if is.noKeys {
			el.add(path, "issuer %q has no key source; %s are verified with the issuer's keys, never introspected", is.Name, what)
		}
	}
}

// Introspector is the rule's introspection issuer, nil when it has none.
func (c *Credential) Introspector() *Issuer {
	for _, is := range c.Issuers {
		if is.Introspect != nil {
			return is
		}
	}
	return nil
}

// HasKeys reports whether the issuer has a key source; only an
// introspection issuer may lack one, and then every token of its iss is
// introspected.
func (is *Issuer) HasKeys() bool { return !is.noKeys }
