package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/extauthz/extauthz/internal/token"
	policyv1 "github.com/extauthz/extauthz/proto/extauthz/policy/v1"
)

// defaultVariablePattern is what a tenant id looks like at most SaaS IdPs
// (GUIDs, slugs) when issuer_variables gives no pattern.
const defaultVariablePattern = `[A-Za-z0-9-]{1,64}`

// unsafeVariableChars are the characters a variable must never match: each
// could move the value out of its URL segment (a host, a path, a userinfo,
// an escape), so a tenant could name an issuer the policy never meant.
const unsafeVariableChars = `/:?#@%\.`

// Template is a compiled templated issuer such as
// https://login.microsoftonline.com/{tenant}/v2.0: literal text and
// variables, alternating, with a non-empty literal between two variables so
// a value's end is unambiguous.
type Template struct {
	// lits has one more element than vars: lits[i] comes before vars[i],
	// the last after the last variable.
	lits []string
	vars []*templateVar
}

type templateVar struct {
	name  string
	re    *regexp.Regexp
	claim string
	allow map[string]bool
}

// isTemplate reports whether iss is a templated issuer.
func isTemplate(iss string) bool { return strings.Contains(iss, "{") }

// compileTemplate parses a templated issuer and checks its variables
// against issuer_variables; errors go to el under path.
func compileTemplate(el *errorList, path, iss string, defs map[string]*policyv1.IssuerVariable) *Template {
	t := &Template{}
	used := map[string]bool{}
	rest := iss
	ok := true
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			if strings.IndexByte(rest, '}') >= 0 {
				el.add(path+".issuer", "unbalanced } in issuer template %q", iss)
				return nil
			}
			t.lits = append(t.lits, rest)
			break
		}
		lit := rest[:open]
		if strings.IndexByte(lit, '}') >= 0 {
			el.add(path+".issuer", "unbalanced } in issuer template %q", iss)
			return nil
		}
		if len(t.vars) > 0 && lit == "" {
			el.add(path+".issuer", "variables must be separated by literal text in %q", iss)
			return nil
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			el.add(path+".issuer", "unbalanced { in issuer template %q", iss)
			return nil
		}
		name := rest[open+1 : open+end]
		rest = rest[open+end+1:]
		if !validVarName(name) {
			el.add(path+".issuer", "variable {%s} in %q: names are letters, digits and _", name, iss)
			return nil
		}
		if used[name] {
			el.add(path+".issuer", "variable {%s} appears more than once in %q", name, iss)
			return nil
		}
		used[name] = true
		vpath := fmt.Sprintf("%s.issuer_variables[%q]", path, name)
		def, found := defs[name]
		if !found {
			el.add(path+".issuer_variables", "issuer %q uses {%s}, which needs an entry here", iss, name)
			ok = false
			continue
		}
		v := compileVariable(el, vpath, name, def)
		if v == nil {
			ok = false
			continue
		}
		t.lits = append(t.lits, lit)
		t.vars = append(t.vars, v)
	}
	names := make([]string, 0, len(defs))
	for n := range defs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if !used[n] {
			el.add(fmt.Sprintf("%s.issuer_variables[%q]", path, n), "issuer %q has no {%s}", iss, n)
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return t
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func compileVariable(el *errorList, path, name string, def *policyv1.IssuerVariable) *templateVar {
	pat := def.GetPattern()
	if pat == "" {
		pat = defaultVariablePattern
	}
	// Anchored whole-value: a pattern that matches a substring would let
	// anything around it through.
	re, err := regexp.Compile(`^(?:` + pat + `)$`)
	if err != nil {
		el.add(path+".pattern", "not an RE2 pattern: %v", err)
		return nil
	}
	for _, c := range unsafeVariableChars {
		if re.MatchString(string(c)) || re.MatchString("a"+string(c)+"a") {
			el.add(path+".pattern", "can match %q, which could carry a value out of its URL segment", c)
			return nil
		}
	}
	v := &templateVar{name: name, re: re, claim: def.GetClaim()}
	if len(def.GetAllow()) > 0 {
		v.allow = make(map[string]bool, len(def.GetAllow()))
	}
	for i, a := range def.GetAllow() {
		if !re.MatchString(a) || !safeValue(a) {
			el.add(fmt.Sprintf("%s.allow[%d]", path, i), "%q does not match the pattern %s", a, pat)
			return nil
		}
		v.allow[a] = true
	}
	return v
}

// safeValue is the fixed charset every variable value must have whatever
// its pattern: a second guard in case a pattern is looser than meant.
func safeValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Match splits iss by the template. shape reports whether iss has the
// template's literal text; vars are the values when every one is safe,
// matches its pattern and is allowed (ok). A shape match that is not ok is
// a token from a tenant the policy does not accept.
func (t *Template) Match(iss string) (vars map[string]string, shape, ok bool) {
	if !strings.HasPrefix(iss, t.lits[0]) {
		return nil, false, false
	}
	rest := iss[len(t.lits[0]):]
	values := make([]string, len(t.vars))
	for i := range t.vars {
		next := t.lits[i+1]
		var val string
		if i == len(t.vars)-1 {
			if !strings.HasSuffix(rest, next) {
				return nil, false, false
			}
			val, rest = rest[:len(rest)-len(next)], ""
		} else {
			j := strings.Index(rest, next)
			if j < 0 {
				return nil, false, false
			}
			val, rest = rest[:j], rest[j+len(next):]
		}
		values[i] = val
	}
	vars = make(map[string]string, len(t.vars))
	ok = true
	for i, v := range t.vars {
		val := values[i]
		if !safeValue(val) || !v.re.MatchString(val) || (v.allow != nil && !v.allow[val]) {
			ok = false
		}
		vars[v.name] = val
	}
	if !ok {
		return nil, true, false
	}
	return vars, true, true
}

// ClaimsBound reports whether every variable with a claim binding finds its
// value in the token's claim of that name, as a string.
func (t *Template) ClaimsBound(vars map[string]string, claims token.ClaimReader) (string, bool) {
	if t == nil {
		return "", true
	}
	for _, v := range t.vars {
		if v.claim == "" {
			continue
		}
		s, ok := claims.ClaimString(v.claim)
		if !ok || s != vars[v.name] {
			return v.name, false
		}
	}
	return "", true
}

// templateIssuer compiles the template of a templated issuer into is. The
// keys must be one fixed set: discovery would fetch them from the
// tenant-chosen issuer URL, and a {variable} in a key source would too.
func (c *compiler) templateIssuer(el *errorList, path string, pi *policyv1.Issuer, is *Issuer) bool {
	if !isTemplate(is.Iss) {
		el.add(path+".issuer_variables", "issuer %q has no {variables}", is.Iss)
		return false
	}
	var src string
	switch s := pi.GetKeySource().(type) {
	case *policyv1.Issuer_Discovery:
		el.add(path+".discovery", "a templated issuer cannot discover its keys: they would come from a URL the token's tenant chose; name a jwks_uri")
		return false
	case *policyv1.Issuer_Spiffe:
		el.add(path+".spiffe", "a JWT-SVID issuer cannot be templated")
		return false
	case *policyv1.Issuer_JwksUri:
		src = s.JwksUri
	case *policyv1.Issuer_JwksFile:
		src = s.JwksFile
	case *policyv1.Issuer_PemFile:
		src = s.PemFile
	case *policyv1.Issuer_HmacSecretFile:
		src = s.HmacSecretFile
	}
	if strings.ContainsAny(src, "{}") {
		el.add(path, "the key source %q must not contain { or }: every tenant shares one key set", src)
		return false
	}
	t := compileTemplate(el, path, is.Iss, pi.GetIssuerVariables())
	if t == nil {
		return false
	}
	is.Template = t
	return true
}
