package token

// FromClaims builds a Token from a claims set that came by another route
// than a compact JWS (an RFC 7662 introspection response), with the
// registered claims lifted and typed exactly as Parse does: a string exp or
// an aud object is refused here too. The Token has no header and no
// signature; claims becomes its Claims() and must not be changed afterwards.
func FromClaims(claims map[string]any) (*Token, error) {
	t := &Token{claims: claims}
	if err := t.registered(func(name string) (any, bool) { v, ok := claims[name]; return v, ok }); err != nil {
		return nil, err
	}
	return t, nil
}
