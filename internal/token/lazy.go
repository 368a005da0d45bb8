package token

import "fmt"

// Claims is every payload member, registered ones included. Values are
// string, bool, nil, int64 (an integer literal that fits), float64 (any other
// number), []any and map[string]any. A parsed token and a view of a cached
// one (Compact.View) build the map from the payload on the first call, so a
// Check that never asks for it does not pay for it; the map must not be
// changed. That first call writes the token: a token shared between
// goroutines must be built with FromClaims, or have had Claims called.
func (t *Token) Claims() map[string]any {
	if t.claims == nil && t.payload != "" {
		m, err := parseObject(t.payload)
		if err != nil {
			// Not reached: the payload parsed once already.
			m = map[string]any{}
		}
		t.claims = m
	}
	return t.claims
}

// Claim is the claim name as Claims()[name] would give it, without building
// the map of a cached token's view.
func (t *Token) Claim(name string) (any, bool) {
	if t.claims != nil || t.payload == "" {
		v, ok := t.claims[name]
		return v, ok
	}
	if i, ok := t.known(name); ok && t.index.present&(1<<i) == 0 {
		return nil, false
	}
	p, ok := t.member(name)
	if !ok {
		return nil, false
	}
	v, err := p.value(1)
	if err != nil {
		return nil, false
	}
	return v, true
}

// ClaimString is the claim name when it is a JSON string: the answer of
// Claims()[name].(string), without boxing the value.
func (t *Token) ClaimString(name string) (string, bool) {
	if t.claims != nil || t.payload == "" {
		s, ok := t.claims[name].(string)
		return s, ok
	}
	if i, ok := t.known(name); ok {
		switch {
		case t.index.present&(1<<i) == 0:
			return "", false
		case i == knownClientID:
			return t.index.clientID, t.index.isString&(1<<i) != 0
		case i == knownScope:
			return t.index.scope, t.index.isString&(1<<i) != 0
		}
	}
	p, ok := t.member(name)
	if !ok || p.peek() != '"' {
		return "", false
	}
	s, err := p.str()
	return s, err == nil
}

// HasClaim reports whether the payload has a member name, of any type.
func (t *Token) HasClaim(name string) bool {
	if t.claims != nil || t.payload == "" {
		_, ok := t.claims[name]
		return ok
	}
	if i, ok := t.known(name); ok {
		return t.index.present&(1<<i) != 0
	}
	_, ok := t.member(name)
	return ok
}

// member finds the top-level member name of the payload and returns a
// parser at its value. The payload parsed strictly once (no duplicates), so
// the first match is the only one and the walk need not validate again.
func (t *Token) member(name string) (parser, bool) {
	p := parser{s: t.payload}
	p.ws()
	if p.peek() != '{' {
		return p, false
	}
	p.i++
	for {
		p.ws()
		if p.peek() != '"' {
			return p, false
		}
		n, err := p.str()
		if err != nil {
			return p, false
		}
		p.ws()
		if p.peek() != ':' {
			return p, false
		}
		p.i++
		p.ws()
		if n == name {
			return p, true
		}
		p.skip()
		p.ws()
		if p.peek() != ',' {
			return p, false
		}
		p.i++
	}
}

// skip steps over the already validated value at p.i.
func (p *parser) skip() {
	depth := 0
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case '"':
			p.skipString()
			if depth == 0 {
				return
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return
			}
			depth--
			if depth == 0 {
				p.i++
				return
			}
		case ',':
			if depth == 0 {
				return
			}
		}
		p.i++
	}
}

// skipString steps over the string whose opening quote is at p.i.
func (p *parser) skipString() {
	p.i++
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case '\\':
			p.i += 2
		case '"':
			p.i++
			return
		default:
			p.i++
		}
	}
}

// ClaimReader reads a token's claims: one at a time, as the hot paths do
// (a cached token's view answers from its payload without building the
// map), or all of them. *Token is one; ClaimMap makes a plain map another.
type ClaimReader interface {
	Claims() map[string]any
	Claim(name string) (any, bool)
	ClaimString(name string) (string, bool)
	HasClaim(name string) bool
}

// ClaimMap is a claims map read as a ClaimReader.
type ClaimMap map[string]any

func (m ClaimMap) Claims() map[string]any { return m }

func (m ClaimMap) Claim(name string) (any, bool) {
	v, ok := m[name]
	return v, ok
}

func (m ClaimMap) ClaimString(name string) (string, bool) {
	s, ok := m[name].(string)
	return s, ok
}

func (m ClaimMap) HasClaim(name string) bool {
	_, ok := m[name]
	return ok
}

var _ ClaimReader = (*Token)(nil)

// scanPayload validates the payload as strictly as parsing it into a map
// would (syntax, UTF-8, depth, numbers, duplicate names at every level, and
// the same error for the same fault), lifts the registered claims and fills
// the index of the known ones, but builds nothing else: values are vetted,
// not boxed, and Claims builds the map from the payload if a Check asks.
func (t *Token) scanPayload() error {
	p := parser{s: t.payload}
	// Gathered as object gathers members, without their values.
	var small [16]member
	names := small[:0]
	// A registered claim of the wrong type is reported once the whole
	// payload is known to be valid JSON, and the first in registered's
	// order, as if the claims had been parsed into a map and then lifted.
	var claimErr error
	claimErrAt := len(registeredClaims)
	err := p.document(func(name string, off int) error {
		names = append(names, member{name: name, off: off})
		if r := registeredIndex(name); r >= 0 {
			cerr, err := t.lift(&p, r)
			if cerr != nil && r < claimErrAt {
				claimErr, claimErrAt = cerr, r
			}
			return err
		}
		i := knownIndex(name)
		if i < 0 {
			return p.vet(1)
		}
		t.index.present |= 1 << i
		if (i != knownClientID && i != knownScope) || p.peek() != '"' {
			return p.vet(1)
		}
		s, err := p.str()
		t.index.isString |= 1 << i
		if i == knownClientID {
			t.index.clientID = s
		} else {
			t.index.scope = s
		}
		return err
	})
	if err == nil {
		err = duplicateName(names)
	}
	if err != nil {
		return fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	return claimErr
}

// duplicateName reports the first of ms (in order) whose name repeats an
// earlier one, as the error parsing into a map gives. Few names are
// compared pairwise; many go through a set, so a payload of thousands of
// members costs linear time.
func duplicateName(ms []member) error {
	dup := func(m member) error {
		return &jsonError{kind: kindDuplicate, off: m.off, what: "duplicate member name"}
	}
	if len(ms) <= 16 {
		for i := 1; i < len(ms); i++ {
			for _, earlier := range ms[:i] {
				if earlier.name == ms[i].name {
					return dup(ms[i])
				}
			}
		}
		return nil
	}
	set := make(map[string]struct{}, len(ms))
	for _, m := range ms {
		if _, ok := set[m.name]; ok {
			return dup(m)
		}
		set[m.name] = struct{}{}
	}
	return nil
}
