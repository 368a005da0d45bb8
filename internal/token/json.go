package token

import (
	"fmt"
	"strconv"
	"strings"
)

// maxDepth bounds nesting so a hostile document cannot exhaust the stack or
// make us allocate a chain of containers; the top-level object is depth 1.
const maxDepth = 32

// jsonKind sorts parse failures so the fuzz tests can compare our verdicts with
// encoding/json's: only kindSyntax is something encoding/json rejects too.
type jsonKind uint8

const (
	kindSyntax    jsonKind = iota // outside the RFC 8259 grammar
	kindNotObject                 // valid JSON, but not an object
	kindDuplicate                 // a member name repeated in one object
	kindDepth                     // nested deeper than maxDepth
	kindUTF8                      // invalid UTF-8 inside a string
	kindSurrogate                 // a \u escape that is half a surrogate pair
	kindRange                     // a number no float64 can hold
)

type jsonError struct {
	kind jsonKind
	off  int
	what string
}

// Error names the offset but never the input: the bytes belong to a token.
func (e *jsonError) Error() string {
	return fmt.Sprintf("%s at offset %d", e.what, e.off)
}

// parser is a strict recursive-descent JSON parser. It works on a string so
// that member names and escape-free string values are substrings of the
// document and cost no allocation.
type parser struct {
	s string
	i int
}

func (p *parser) fail(kind jsonKind, what string) error {
	return &jsonError{kind: kind, off: p.i, what: what}
}

func (p *parser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0 // NUL is never valid where peek's result matters
}

func (p *parser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// document parses s as exactly one JSON object, calling each for every
// top-level member with p positioned at the member's value. each must consume
// the value; finding duplicate names is up to the caller.
func (p *parser) document(each func(name string, off int) error) error {
	p.ws()
	if p.peek() != '{' {
		if p.i < len(p.s) && strings.IndexByte("[\"-0123456789tfn", p.s[p.i]) >= 0 {
			return p.fail(kindNotObject, "not a JSON object")
		}
		return p.fail(kindSyntax, "expected '{'")
	}
	if err := p.members(each); err != nil {
		return err
	}
	p.ws()
	if p.i != len(p.s) {
		return p.fail(kindSyntax, "trailing data after the object")
	}
	return nil
}

// ParseObject parses s as exactly one JSON object with the package's
// strictness (no duplicate names, valid UTF-8, bounded depth), for other
// untrusted JOSE objects such as a DPoP proof's jwk.
func ParseObject(s string) (map[string]any, error) {
	return parseObject(s)
}

// parseObject parses s as exactly one JSON object into a map.
func parseObject(s string) (map[string]any, error) {
	p := parser{s: s}
	return p.object(1, true)
}

type member struct {
	name string
	off  int
	v    any
}

// object parses the object at p.i, at depth; top makes it the whole
// document. Members are gathered on the stack and the map is made at its
// final size: growing it member by member cost more than the parsing.
func (p *parser) object(depth int, top bool) (map[string]any, error) {
	var small [16]member
	ms := small[:0]
	each := func(name string, off int) error {
		v, err := p.value(depth)
		if err != nil {
			return err
		}
		ms = append(ms, member{name: name, off: off, v: v})
		return nil
	}
	var err error
	if top {
		err = p.document(each)
	} else {
		err = p.members(each)
	}
	if err != nil {
		return nil, err
	}
	m := make(map[string]any, len(ms))
	for _, e := range ms {
		if _, dup := m[e.name]; dup {
			return nil, &jsonError{kind: kindDuplicate, off: e.off, what: "duplicate member name"}
		}
		m[e.name] = e.v
	}
	return m, nil
}

// members walks the object whose '{' is at p.i.
func (p *parser) members(each func(name string, off int) error) error {
	p.i++
	p.ws()
	if p.peek() == '}' {
		p.i++
		return nil
	}
	for {
		p.ws()
		if p.peek() != '"' {
			return p.fail(kindSyntax, "expected a member name")
		}
		off := p.i
		name, err := p.str()
		if err != nil {
			return err
		}
		p.ws()
		if p.peek() != ':' {
			return p.fail(kindSyntax, "expected ':'")
		}
		p.i++
		p.ws()
		if err := each(name, off); err != nil {
			return err
		}
		p.ws()
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return p.fail(kindSyntax, "expected ',' or '}'")
		}
	}
}

// value parses the value at p.i, which sits in a container at depth.
func (p *parser) value(depth int) (any, error) {
	switch c := p.peek(); {
	case c == '{':
		if depth+1 > maxDepth {
			return nil, p.fail(kindDepth, "nesting too deep")
		}
		return p.object(depth+1, false)
	case c == '[':
		if depth+1 > maxDepth {
			return nil, p.fail(kindDepth, "nesting too deep")
		}
		return p.array(depth + 1)
	case c == '"':
		return p.str()
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	}
	return nil, p.fail(kindSyntax, "expected a value")
}

func (p *parser) literal(lit string) error {
	if !strings.HasPrefix(p.s[p.i:], lit) {
		return p.fail(kindSyntax, "invalid literal")
	}
	p.i += len(lit)
	return nil
}

func (p *parser) array(depth int) ([]any, error) {
	// As in object, elements are gathered on the stack to allocate once.
	var small [16]any
	a := small[:0]
	err := p.elements(func() error {
		v, err := p.value(depth)
		a = append(a, v)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(a) == 0 {
		return []any{}, nil
	}
	return append([]any(nil), a...), nil
}

// elements walks the array whose '[' is at p.i, calling each with p at
// every element, which each must consume.
func (p *parser) elements(each func() error) error {
	p.i++
	p.ws()
	if p.peek() == ']' {
		p.i++
		return nil
	}
	for {
		p.ws()
		if err := each(); err != nil {
			return err
		}
		p.ws()
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			return nil
		default:
			return p.fail(kindSyntax, "expected ',' or ']'")
		}
	}
}

// number returns int64 for an integer literal that fits, float64 otherwise,
// so callers can tell 1 from 1.0 and 1e0 (RFC 7519 NumericDate checks do).
func (p *parser) number() (any, error) {
	n, f, integer, err := p.numberParts()
	if err != nil {
		return nil, err
	}
	if integer {
		return n, nil
	}
	return f, nil
}

// numberParts parses the number at p.i as number does, unboxed: n when
// integer (a literal without fraction or exponent that fits int64), else f.
func (p *parser) numberParts() (n int64, f float64, integer bool, err error) {
	start := p.i
	if p.peek() == '-' {
		p.i++
	}
	switch c := p.peek(); {
	case c == '0':
		p.i++
	case c >= '1' && c <= '9':
		p.digits()
	default:
		return 0, 0, false, p.fail(kindSyntax, "invalid number")
	}
	integer = true
	if p.peek() == '.' {
		p.i++
		integer = false
		if p.digits() == 0 {
			return 0, 0, false, p.fail(kindSyntax, "invalid number")
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.i++
		integer = false
		if c := p.peek(); c == '+' || c == '-' {
			p.i++
		}
		if p.digits() == 0 {
			return 0, 0, false, p.fail(kindSyntax, "invalid number")
		}
	}
	lit := p.s[start:p.i]
	if integer {
		if n, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return n, 0, true, nil
		}
	}
	f, err = strconv.ParseFloat(lit, 64)
	if err != nil {
		return 0, 0, false, &jsonError{kind: kindRange, off: start, what: "number out of range"}
	}
	return 0, f, false, nil
}

// vet validates the value at p.i exactly as value parses it (the same
// verdict and the same error), building nothing: a payload's claims are
// checked on every new token, and boxing each into an any cost more than
// reading it.
func (p *parser) vet(depth int) error {
	switch c := p.peek(); {
	case c == '{' || c == '[':
		if depth+1 > maxDepth {
			return p.fail(kindDepth, "nesting too deep")
		}
		if c == '[' {
			return p.elements(func() error { return p.vet(depth + 1) })
		}
		var small [16]member
		names := small[:0]
		if err := p.members(func(name string, off int) error {
			names = append(names, member{name: name, off: off})
			return p.vet(depth + 1)
		}); err != nil {
			return err
		}
		return duplicateName(names)
	case c == '"':
		_, err := p.str()
		return err
	case c == '-' || c >= '0' && c <= '9':
		_, _, _, err := p.numberParts()
		return err
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	}
	return p.fail(kindSyntax, "expected a value")
}

func (p *parser) digits() int {
	start := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}
