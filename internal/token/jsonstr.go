package token

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// str parses the string whose opening quote is at p.i. Without escapes the
// result is a substring of the document.
func (p *parser) str() (string, error) {
	p.i++
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return p.s[start : p.i-1], nil
		case c == '\\':
			return p.strEscaped(start)
		case c < 0x20:
			return "", p.fail(kindSyntax, "control character in string")
		case c < utf8.RuneSelf:
			p.i++
		default:
			n, err := p.multibyte()
			if err != nil {
				return "", err
			}
			p.i += n
		}
	}
	return "", p.fail(kindSyntax, "unterminated string")
}

// multibyte validates the UTF-8 sequence at p.i. utf8 already refuses
// overlong forms and encoded surrogates.
func (p *parser) multibyte() (int, error) {
	r, n := utf8.DecodeRuneInString(p.s[p.i:])
	if r == utf8.RuneError && n == 1 {
		return 0, p.fail(kindUTF8, "invalid UTF-8 in string")
	}
	return n, nil
}

// strEscaped continues str from the first backslash, building the unescaped
// value.
func (p *parser) strEscaped(start int) (string, error) {
	buf := make([]byte, 0, p.i-start+16)
	buf = append(buf, p.s[start:p.i]...)
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return string(buf), nil
		case c == '\\':
			var err error
			if buf, err = p.escape(buf); err != nil {
				return "", err
			}
		case c < 0x20:
			return "", p.fail(kindSyntax, "control character in string")
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			p.i++
		default:
			n, err := p.multibyte()
			if err != nil {
				return "", err
			}
			buf = append(buf, p.s[p.i:p.i+n]...)
			p.i += n
		}
	}
	return "", p.fail(kindSyntax, "unterminated string")
}

// escape decodes the escape sequence whose backslash is at p.i. A \u escape
// must stand for a whole code point: a high surrogate must be followed by a
// low one, because a lone surrogate is not a character and has no UTF-8 form.
func (p *parser) escape(buf []byte) ([]byte, error) {
	if p.i+1 >= len(p.s) {
		return nil, p.fail(kindSyntax, "unterminated string")
	}
	c := p.s[p.i+1]
	p.i += 2
	switch c {
	case '"', '\\', '/':
		return append(buf, c), nil
	case 'b':
		return append(buf, '\b'), nil
	case 'f':
		return append(buf, '\f'), nil
	case 'n':
		return append(buf, '\n'), nil
	case 'r':
		return append(buf, '\r'), nil
	case 't':
		return append(buf, '\t'), nil
	case 'u':
	default:
		p.i -= 2
		return nil, p.fail(kindSyntax, "invalid escape")
	}
	r, err := p.hex4()
	if err != nil {
		return nil, err
	}
	if utf16.IsSurrogate(r) {
		if r >= 0xDC00 || !strings.HasPrefix(p.s[p.i:], `\u`) {
			return nil, p.fail(kindSurrogate, "lone surrogate")
		}
		p.i += 2
		lo, err := p.hex4()
		if err != nil {
			return nil, err
		}
		if lo < 0xDC00 || lo > 0xDFFF {
			return nil, p.fail(kindSurrogate, "lone surrogate")
		}
		r = utf16.DecodeRune(r, lo)
	}
	return utf8.AppendRune(buf, r), nil
}

func (p *parser) hex4() (rune, error) {
	if p.i+4 > len(p.s) {
		return 0, p.fail(kindSyntax, "invalid \\u escape")
	}
	var r rune
	for _, c := range []byte(p.s[p.i : p.i+4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, p.fail(kindSyntax, "invalid \\u escape")
		}
		r = r<<4 | rune(c)
	}
	p.i += 4
	return r, nil
}
