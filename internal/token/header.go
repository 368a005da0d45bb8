package token

import (
	"fmt"
	"strings"
)

// parseHeader reads the JOSE header. Members other than alg, kid, typ and
// jwk are validated as JSON and otherwise ignored: we never fetch jku or
// x5u, nor trust an embedded x5c. An embedded jwk is kept as raw JSON for
// the one caller that may use it, a DPoP proof, whose key is its own.
func parseHeader(s string) (Header, error) {
	var (
		h                       Header
		hasAlg, algBad          bool
		hasEnc, hasCrit, hasB64 bool
		badType                 string
		names                   [8]string
		seen                    map[string]bool
		n                       int
	)
	p := parser{s: s}
	err := p.document(func(name string, off int) error {
		// Duplicates are found by a scan while the header is small, as real
		// ones are, and by a map once it is not, so a header of thousands of
		// members costs linear time.
		dup := false
		if n < len(names) {
			for _, prev := range names[:n] {
				dup = dup || prev == name
			}
			names[n] = name
		} else {
			if seen == nil {
				seen = make(map[string]bool, 2*len(names))
				for _, prev := range names {
					seen[prev] = true
				}
			}
			dup = seen[name]
			seen[name] = true
		}
		n++
		if dup {
			return &jsonError{kind: kindDuplicate, off: off, what: "duplicate member name"}
		}
		switch name {
		case "alg", "kid", "typ":
			if p.peek() != '"' {
				if name == "alg" {
					algBad = true
				} else if badType == "" {
					badType = name
				}
				break
			}
			v, err := p.str()
			switch name {
			case "alg":
				h.Alg, hasAlg = v, true
			case "kid":
				h.Kid = v
			case "typ":
				h.Typ = v
			}
			return err
		case "jwk":
			start := p.i
			v, err := p.value(1)
			if err != nil {
				return err
			}
			if _, ok := v.(map[string]any); ok {
				h.JWK = p.s[start:p.i]
			}
			return nil
		case "enc":
			hasEnc = true
		case "crit":
			hasCrit = true
		case "b64":
			hasB64 = true
		}
		_, err := p.value(1)
		return err
	})
	switch {
	case err != nil:
		return h, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	case hasEnc:
		return h, fmt.Errorf("%w: header has enc: a JWE, not a JWS", ErrMalformed)
	case badType != "":
		return h, fmt.Errorf("%w: header %s is not a string", ErrMalformed, badType)
	case algBad:
		return h, fmt.Errorf("%w: header alg is not a string", ErrAlgorithm)
	case !hasAlg:
		return h, fmt.Errorf("%w: header has no alg", ErrAlgorithm)
	case strings.EqualFold(h.Alg, "none"):
		return h, fmt.Errorf("%w: alg none", ErrAlgorithm)
	case !allowedAlg(h.Alg):
		return h, fmt.Errorf("%w: alg %.32q is not supported", ErrAlgorithm, h.Alg)
	case hasCrit:
		return h, fmt.Errorf("%w: crit is present", ErrCritical)
	case hasB64:
		return h, fmt.Errorf("%w: b64 is present", ErrCritical)
	}
	return h, nil
}
