package policy

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
)

// WarnLogger returns an Options.Warn that logs each warning, as serve does
// at every load and reload.
func WarnLogger(log *slog.Logger) func(FieldError) {
	return func(w FieldError) {
		log.Warn("policy warning: "+w.Msg, "file", w.File, "line", w.Line, "column", w.Column, "path", w.Path)
	}
}

// lint finds what a policy that loaded cannot do of what it says, each
// finding certain (no false alarm), not complete:
//
//   - a header expression that never yields a value to send: of a type
//     that is never sent (a map, bytes, null, …), or the same empty, null
//     or error value for every request (a constant, or on a public route
//     an expression of the credential's variables alone);
//   - a require expression that is never true in the same way (a literal
//     `false` is taken as meant);
//   - a match that never holds (paths none of which has one of the
//     path_prefixes);
//   - a rule that matching never selects, because an earlier rule has an
//     empty match or exactly the same match;
//   - a public route with no require or headers under default_action
//     allow, that no later rule could match: it does what the default does;
//   - an issuer no rule names.
//
// files and snap are a successful load: snap.Rules holds the files' rules
// in order, one for one.
func lint(files []*file, snap *Snapshot) []FieldError {
	env, err := celEnv()
	if err != nil {
		return nil
	}
	var (
		warns []FieldError
		order = map[string]int{}
	)
	named := map[string]bool{}
	for _, r := range snap.Rules {
		if r.ClientAssertion != nil {
			for _, is := range r.ClientAssertion.Issuers {
				named[is.Name] = true
			}
		}
		if r.Bearer != nil {
			for _, is := range r.Bearer.Issuers {
				named[is.Name] = true
			}
		}
		if r.AuthorizationGrant != nil {
			for _, is := range r.AuthorizationGrant.Issuers {
				named[is.Name] = true
			}
		}
	}
	type placedRule struct {
		r    *Rule
		el   *errorList
		path string
	}
	var rules []placedRule
	for fi, f := range files {
		order[f.name] = fi
		el := &errorList{file: f.name, src: f.src, errs: &warns}
		for i, pi := range f.pf.GetIssuers() {
			if !named[pi.GetName()] {
				el.add(fmt.Sprintf("issuers[%d]", i), "no rule names issuer %q, so it verifies no token", pi.GetName())
			}
		}
		for i, pr := range f.pf.GetRules() {
			k := len(rules)
			if k >= len(snap.Rules) || snap.Rules[k].Name != pr.GetName() {
				return nil // not a successful load
			}
			r := snap.Rules[k]
			path := fmt.Sprintf("rules[%d]", i)
			rules = append(rules, placedRule{r, el, path})
			public := r.ClientAssertion == nil && r.Bearer == nil && r.AuthorizationGrant == nil
			for j, src := range pr.GetRequire() {
				lintRequire(env, el, fmt.Sprintf("%s.require[%d]", path, j), src, r.Require[j], public)
			}
			names := make([]string, 0, len(pr.GetHeaders()))
			for name := range pr.GetHeaders() {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				for _, h := range r.Headers {
					if h.Name == strings.ToLower(name) {
						lintHeader(env, el, fmt.Sprintf("%s.headers[%q]", path, name), pr.GetHeaders()[name], &h.Expr, public)
					}
				}
			}
			if m := &r.Match; m.paths != nil && m.prefixes != nil && !pathsReachPrefixes(m.paths, m.prefixes) {
				el.add(path+".match", "never holds: no path of paths starts with one of path_prefixes, and both must hold; only a route whose context_extensions name the rule (rule: %s) selects it", r.Name)
			}
		}
	}
	for j, pj := range rules {
		shadowed := false
		for _, pi := range rules[:j] {
			why := ""
			switch {
			case pi.r.Match.empty():
				why = "has no match, so it matches every request"
			case sameMatch(&pi.r.Match, &pj.r.Match):
				why = "has the same match"
			default:
				continue
			}
			pj.el.add(pj.path, "rule %q is never selected by matching: rule %q comes first and %s; only a route whose context_extensions name it (rule: %s) selects it", pj.r.Name, pi.r.Name, why, pj.r.Name)
			shadowed = true
			break
		}
		r := pj.r
		if shadowed || !snap.DefaultAllow || r.ClientAssertion != nil || r.Bearer != nil || r.AuthorizationGrant != nil || len(r.Require) > 0 || len(r.Headers) > 0 {
			continue
		}
		alone := true
		for _, later := range rules[j+1:] {
			alone = alone && disjoint(&r.Match, &later.r.Match)
		}
		if alone {
			pj.el.add(pj.path, "rule %q is a public route with no require or headers, and no later rule matches its requests: default_action allow would allow them just the same; remove it, or give it a credential", r.Name)
		}
	}
	sort.SliceStable(warns, func(a, b int) bool {
		wa, wb := warns[a], warns[b]
		if wa.File != wb.File {
			return order[wa.File] < order[wb.File]
		}
		if wa.Line != wb.Line {
			return wa.Line < wb.Line
		}
		return wa.Column < wb.Column
	})
	return warns
}

// credentialVars are the CEL variables that only a credential fills: on a
// public route a Check evaluates with them empty (a zero Vars). Variables
// not listed (request, and any other) are taken to vary from request to
// request.
var credentialVars = map[string]bool{
	"claims": true, "client_id": true, "spiffe_id": true, "scopes": true,
	"issuer": true, "credential": true, "dpop_jkt": true,
}

const publicNote = "on a public route (no credential) claims, client_id and the other variables of a credential are empty, and"

// lintHeader warns about a header expression that never sets its header.
func lintHeader(env *cel.Env, el *errorList, path, src string, e *Expr, public bool) {
	fixed, out, err, ok := probeExpr(e, nil)
	if !ok {
		return
	}
	if fixed {
		if what, never := noHeaderValue(out, err); never {
			el.add(path, "never sets the header: it reads no variable and is always %s", what)
		}
		return
	}
	if ast, iss := env.Compile(src); iss.Err() == nil && neverSent(ast.OutputType()) {
		el.add(path, "never sets the header: its value is of type %s, and only strings, bools, numbers and lists or optionals of them are sent", ast.OutputType())
		return
	}
	if !public {
		return
	}
	if fixed, out, err, ok = probeExpr(e, credentialVars); ok && fixed {
		if what, never := noHeaderValue(out, err); never {
			el.add(path, "never sets the header: %s then it is always %s", publicNote, what)
		}
	}
}

// lintRequire warns about a require expression that is never true.
func lintRequire(env *cel.Env, el *errorList, path, src string, e *Expr, public bool) {
	if strings.TrimSpace(src) == "false" {
		return // a route closed on purpose
	}
	fixed, out, err, ok := probeExpr(e, nil)
	switch {
	case !ok:
		return
	case fixed:
		if out != types.True || err != nil {
			el.add(path, "is never true: it reads no variable and is always %s, so the rule never allows (write false to close a route on purpose)", describeVal(out, err))
		}
		return
	case !public:
		return
	}
	if fixed, out, err, ok = probeExpr(e, credentialVars); ok && fixed && (out != types.True || err != nil) {
		el.add(path, "is never true: %s then it is always %s, so the rule never allows", publicNote, describeVal(out, err))
	}
}

// probe is an activation that knows only some variables' values (those of
// a zero Vars) and notes whether evaluation asked for any other.
type probe struct {
	known   map[string]bool
	vars    Vars
	varying bool
}

func (p *probe) ResolveName(name string) (any, bool) {
	if p.known[name] {
		return p.vars.ResolveName(name)
	}
	p.varying = true
	return nil, false
}

func (p *probe) Parent() interpreter.Activation { return nil }

// probeExpr evaluates e knowing only the variables known. fixed is true
// when the result depends on no other variable, so it is the result of
// every evaluation; ok is false when evaluation ran out of time.
func probeExpr(e *Expr, known map[string]bool) (fixed bool, out ref.Val, err error, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), maxEvalTime)
	defer cancel()
	p := &probe{known: known}
	out, _, err = e.prg.ContextEval(ctx, p)
	if ctx.Err() != nil {
		return false, nil, nil, false
	}
	return !p.varying, out, err, true
}

// noHeaderValue reports whether a result leaves the header unset, as
// Expr.Value would, and describes it.
func noHeaderValue(out ref.Val, err error) (string, bool) {
	if err != nil {
		return describeVal(out, err), true
	}
	s, ok := headerString(out)
	switch {
	case !ok:
		return describeVal(out, nil), true
	case s == "":
		return describeVal(out, nil), true
	case breaksHeader(s):
		return "a value with CR, LF or NUL, which is never sent", true
	}
	return "", false
}

func describeVal(out ref.Val, err error) string {
	if err != nil {
		return fmt.Sprintf("an error (%v)", err)
	}
	switch v := out.(type) {
	case nil:
		return "no value"
	case types.Null:
		return "null"
	case types.String:
		if v == "" {
			return "the empty string"
		}
		return fmt.Sprintf("%q", string(v))
	case types.Bool:
		return fmt.Sprint(bool(v))
	case *types.Optional:
		if !v.HasValue() {
			return "optional.none()"
		}
	case *types.Err:
		return fmt.Sprintf("an error (%v)", v)
	}
	if s, ok := headerString(out); ok && s == "" {
		return fmt.Sprintf("an empty %s", out.Type().TypeName())
	}
	return fmt.Sprintf("a %s", out.Type().TypeName())
}

// neverSent reports whether no value of type t is ever sent as a header
// (see headerString): maps, bytes, null, timestamps, durations, types, and
// lists or optionals of them.
func neverSent(t *types.Type) bool {
	switch t.Kind() {
	case types.MapKind, types.BytesKind, types.NullTypeKind, types.TimestampKind, types.DurationKind, types.TypeKind, types.StructKind:
		return true
	case types.ListKind:
		p := t.Parameters()
		return len(p) == 1 && neverSent(p[0])
	case types.OpaqueKind:
		p := t.Parameters()
		return t.TypeName() == "optional_type" && len(p) == 1 && neverSent(p[0])
	}
	return false
}

func (m *Match) empty() bool {
	return m.hostsExact == nil && m.hostsSuffix == nil && m.paths == nil && m.prefixes == nil && m.methods == nil
}

// sameMatch reports whether a and b hold for exactly the same requests
// because they are written with the same conditions, in any order.
func sameMatch(a, b *Match) bool {
	return sameSet(a.hostsExact, b.hostsExact) && sameSet(setOf(a.hostsSuffix), setOf(b.hostsSuffix)) &&
		sameSet(a.paths, b.paths) && sameSet(setOf(a.prefixes), setOf(b.prefixes)) && sameSet(a.methods, b.methods)
}

func setOf(l []string) map[string]bool {
	if l == nil {
		return nil
	}
	s := make(map[string]bool, len(l))
	for _, v := range l {
		s[v] = true
	}
	return s
}

func sameSet(a, b map[string]bool) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// disjoint reports whether no request can satisfy both a and b, by one
// condition of each that no value satisfies both of (false when unsure).
func disjoint(a, b *Match) bool {
	switch {
	case a.methods != nil && b.methods != nil && !intersect(a.methods, b.methods):
		return true
	case a.paths != nil && b.paths != nil && !intersect(a.paths, b.paths):
		return true
	case a.paths != nil && b.prefixes != nil && !pathsReachPrefixes(a.paths, b.prefixes):
		return true
	case b.paths != nil && a.prefixes != nil && !pathsReachPrefixes(b.paths, a.prefixes):
		return true
	case a.prefixes != nil && b.prefixes != nil && !prefixesOverlap(a.prefixes, b.prefixes):
		return true
	}
	return hostsDisjoint(a, b)
}

func intersect(a, b map[string]bool) bool {
	for k := range a {
		if b[k] {
			return true
		}
	}
	return false
}

// pathsReachPrefixes reports whether some path starts with some prefix.
func pathsReachPrefixes(paths map[string]bool, prefixes []string) bool {
	for p := range paths {
		for _, pre := range prefixes {
			if strings.HasPrefix(p, pre) {
				return true
			}
		}
	}
	return false
}

// prefixesOverlap reports whether some path could start with a prefix of
// each list: one prefix is a prefix of the other.
func prefixesOverlap(a, b []string) bool {
	for _, p := range a {
		for _, q := range b {
			if strings.HasPrefix(p, q) || strings.HasPrefix(q, p) {
				return true
			}
		}
	}
	return false
}

// hostsDisjoint reports whether both matches name hosts and no host is
// named by both: two names differ, a name is not under a wildcard, and of
// two wildcards neither suffix ends the other.
func hostsDisjoint(a, b *Match) bool {
	if a.hostsExact == nil || b.hostsExact == nil {
		return false
	}
	if intersect(a.hostsExact, b.hostsExact) {
		return false
	}
	for h := range a.hostsExact {
		for _, s := range b.hostsSuffix {
			if wildcardMatch(h, s) {
				return false
			}
		}
	}
	for h := range b.hostsExact {
		for _, s := range a.hostsSuffix {
			if wildcardMatch(h, s) {
				return false
			}
		}
	}
	for _, s := range a.hostsSuffix {
		for _, t := range b.hostsSuffix {
			if strings.HasSuffix(s, t) || strings.HasSuffix(t, s) {
				return false
			}
		}
	}
	return true
}
