package check

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"

	"github.com/extauthz/extauthz/internal/policy"
)

// Step is one check made while deciding a request, as `extauthz check
// --policy` prints it: what was checked, whether it held, and why.
type Step struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	// Vars are the CEL values a failed require read, in the order the
	// expression names them.
	Vars []Var `json:"vars,omitempty"`
}

// Var is one value a CEL expression read: a variable (scopes) or a path
// into one (claims.tenant, request.headers["x-team"]), and its value as
// JSON, or "(absent)".
type Var struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// trace records Steps. A nil *trace records nothing, so the serving path
// pays one nil check per step.
type trace struct {
	steps []Step
}

func (t *trace) add(check string, ok bool, format string, args ...any) {
	if t == nil {
		return
	}
	t.steps = append(t.steps, Step{Check: check, OK: ok, Detail: fmt.Sprintf(format, args...)})
}

// require records one require expression; a failed one also records the
// values of the variables it read, so an operator sees why it was false.
func (t *trace) require(e *policy.Expr, vars *policy.Vars, ok bool, err error) {
	if t == nil {
		return
	}
	if err != nil {
		t.add("require", false, "%s: %v", e.Source, err)
	} else {
		t.add("require", ok, "%s", e.Source)
	}
	if !ok {
		t.steps[len(t.steps)-1].Vars = readValues(e.Source, vars)
	}
}

// Explain decides req as Check does and also returns every step taken, for
// operators debugging a policy offline. It is not for the serving path.
func (s *Server) Explain(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, []Step) {
	tr := &trace{}
	resp := s.check(ctx, req, tr)
	return resp, tr.steps
}

// celVars are the variables policy declares for CEL (internal/policy's
// newEnv); an identifier of another name is not a Check's value.
var celVars = []string{"claims", "client_id", "spiffe_id", "scopes", "issuer", "credential", "dpop_jkt", "peer", "request", "form", "grant"}

// parseEnv parses expressions again on the explain path only: the compiled
// policy.Expr keeps no syntax tree. Parsing needs no declarations; the
// optional syntax (claims.?x) needs the option.
var parseEnv = sync.OnceValues(func() (*cel.Env, error) { return cel.NewEnv(cel.OptionalTypes()) })

// readValues lists the values src reads of vars: each variable, or each
// path of constant field names and keys into one (claims.tenant,
// claims["tenant"], claims.?tenant, request.headers["x-team"]), once each.
func readValues(src string, vars *policy.Vars) []Var {
	env, err := parseEnv()
	if err != nil {
		return nil
	}
	ast, iss := env.Parse(src)
	if iss.Err() != nil {
		return nil
	}
	var paths [][]string
	collectPaths(ast.NativeRep().Expr(), nil, &paths)
	out := make([]Var, 0, len(paths))
	for _, p := range paths {
		out = append(out, Var{Name: pathName(p), Value: pathValue(vars, p)})
	}
	return out
}

// collectPaths appends to paths every variable path e reads, not counting
// names that comprehension variables (bound) shadow.
func collectPaths(e celast.Expr, bound []string, paths *[][]string) {
	if p, ok := varPath(e); ok {
		if !slices.Contains(bound, p[0]) && !slices.ContainsFunc(*paths, func(q []string) bool { return slices.Equal(p, q) }) {
			*paths = append(*paths, p)
		}
		return
	}
	switch e.Kind() {
	case celast.SelectKind:
		collectPaths(e.AsSelect().Operand(), bound, paths)
	case celast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() {
			collectPaths(c.Target(), bound, paths)
		}
		for _, a := range c.Args() {
			collectPaths(a, bound, paths)
		}
	case celast.ListKind:
		for _, el := range e.AsList().Elements() {
			collectPaths(el, bound, paths)
		}
	case celast.MapKind:
		for _, en := range e.AsMap().Entries() {
			collectPaths(en.AsMapEntry().Key(), bound, paths)
			collectPaths(en.AsMapEntry().Value(), bound, paths)
		}
	case celast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			collectPaths(f.AsStructField().Value(), bound, paths)
		}
	case celast.ComprehensionKind:
		c := e.AsComprehension()
		collectPaths(c.IterRange(), bound, paths)
		collectPaths(c.AccuInit(), bound, paths)
		inner := append(slices.Clip(bound), c.IterVar(), c.AccuVar())
		if c.HasIterVar2() {
			inner = append(inner, c.IterVar2())
		}
		collectPaths(c.LoopCondition(), inner, paths)
		collectPaths(c.LoopStep(), inner, paths)
		collectPaths(c.Result(), inner, paths)
	}
}

// varPath reads e as a variable and constant keys into it: claims,
// claims.a.b, claims["a"], claims.?a, request.headers[?"x"].
func varPath(e celast.Expr) ([]string, bool) {
	switch e.Kind() {
	case celast.IdentKind:
		if slices.Contains(celVars, e.AsIdent()) {
			return []string{e.AsIdent()}, true
		}
	case celast.SelectKind:
		s := e.AsSelect()
		if p, ok := varPath(s.Operand()); ok {
			return append(p, s.FieldName()), true
		}
	case celast.CallKind:
		c := e.AsCall()
		switch c.FunctionName() {
		case operators.Index, operators.OptIndex, operators.OptSelect:
		default:
			return nil, false
		}
		if len(c.Args()) != 2 || c.Args()[1].Kind() != celast.LiteralKind {
			return nil, false
		}
		key, ok := c.Args()[1].AsLiteral().(types.String)
		if !ok {
			return nil, false
		}
		if p, ok := varPath(c.Args()[0]); ok {
			return append(p, string(key)), true
		}
	}
	return nil, false
}

// pathName writes a path as CEL would: claims.tenant, but
// request.headers["x-team"] for a key that is not an identifier.
func pathName(p []string) string {
	var b strings.Builder
	b.WriteString(p[0])
	for _, k := range p[1:] {
		if isIdent(k) {
			b.WriteString("." + k)
		} else {
			b.WriteString("[" + quote(k) + "]")
		}
	}
	return b.String()
}

func isIdent(s string) bool {
	for i, c := range s {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// secretHeaders are shown redacted when a whole header map is printed:
// an expression that reads request.headers did not ask for the token.
var secretHeaders = []string{"authorization", "proxy-authorization", "dpop", "cookie"}

// pathValue is the JSON of the value at p in vars, "(absent)" when a key
// is missing.
func pathValue(vars *policy.Vars, p []string) string {
	v, ok := vars.ResolveName(p[0])
	if !ok {
		return "(absent)"
	}
	if lazy, isLazy := v.(interface{ Value() any }); isLazy && p[0] == "claims" {
		// A cached token's claims, read one by one in a Check: the whole
		// map for the explanation.
		v = lazy.Value()
	}
	for _, k := range p[1:] {
		switch m := v.(type) {
		case map[string]any:
			v, ok = m[k]
		case map[string]string:
			v, ok = m[k]
		default:
			ok = false
		}
		if !ok {
			return "(absent)"
		}
	}
	if h, isHeaders := v.(map[string]string); isHeaders {
		v = redact(h)
	} else if m, isMap := v.(map[string]any); isMap && p[0] == "request" {
		if h, ok := m["headers"].(map[string]string); ok {
			r := make(map[string]any, len(m))
			for k, x := range m {
				r[k] = x
			}
			r["headers"] = redact(h)
			v = r
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}

func redact(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if slices.Contains(secretHeaders, k) {
			v = "(redacted)"
		}
		out[k] = v
	}
	return out
}
