package keys

import "net/url"

// CheckURL applies the key plane's rule for URLs fetched on an issuer's
// behalf (https, or http on loopback or with allowInsecureHTTP; absolute, no
// userinfo, no fragment) so other fetchers of issuer metadata, such as
// token introspection, refuse exactly what key fetches refuse.
func CheckURL(raw string, allowInsecureHTTP bool) (*url.URL, error) {
	return checkURL(raw, allowInsecureHTTP)
}
