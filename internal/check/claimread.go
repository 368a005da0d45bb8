package check

// claimReader reads a token's claims one at a time: a *token.Token, whose
// view of a cached token answers from the payload without building the
// claims map, or a claimMap.
type claimReader interface {
	Claim(name string) (any, bool)
	ClaimString(name string) (string, bool)
	HasClaim(name string) bool
}

// claimMap is a claims map read as a claimReader.
type claimMap map[string]any

func (m claimMap) Claim(name string) (any, bool) {
	v, ok := m[name]
	return v, ok
}

func (m claimMap) ClaimString(name string) (string, bool) {
	s, ok := m[name].(string)
	return s, ok
}

func (m claimMap) HasClaim(name string) bool {
	_, ok := m[name]
	return ok
}
