package policy

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"

	"github.com/extauthz/extauthz/internal/token"
)

const (
	// maxInputSize bounds the size CEL's estimator assumes for any variable
	// input (a claim string, the claims map, a header): tokens and requests are
	// bounded by extauthz's and Envoy's limits, so no input is larger.
	maxInputSize = 64 << 10
	// maxEstimatedCost rejects at load an expression that could stall a
	// Check; a comprehension over a claim list nested in another is over it.
	maxEstimatedCost = 10_000_000
	// cheapCost is the estimated cost below which an expression runs with no
	// runtime guard: it cannot loop over input.
	cheapCost = 100_000
	// maxEvalTime caps one evaluation of a costlier expression at run time;
	// past it the expression counts as an error. (CEL's own runtime cost
	// tracker is not used: it costs time quadratic in a comprehension's
	// length, which an attacker's claim list controls.)
	maxEvalTime = 10 * time.Millisecond
	// interruptEvery is how many comprehension steps pass between checks of
	// the evaluation deadline.
	interruptEvery = 100
)

// celEnv is built once: an Env is immutable and safe to share, and building
// one costs more than compiling a whole policy.
var celEnv = sync.OnceValues(newEnv)

// newEnv declares the variables of the spec's CEL table.
func newEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("claims", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("client_id", cel.StringType),
		cel.Variable("spiffe_id", cel.StringType),
		cel.Variable("scopes", cel.ListType(cel.StringType)),
		cel.Variable("issuer", cel.StringType),
		cel.Variable("issuer_vars", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("credential", cel.StringType),
		cel.Variable("dpop_jkt", cel.StringType),
		cel.Variable("peer", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("request", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("form", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("grant", cel.MapType(cel.StringType, cel.DynType)),
		cel.OptionalTypes(),
		ext.Strings(),
		spiffeFunctions(),
	)
}

// Expr is a compiled CEL expression.
type Expr struct {
	Source string
	prg    cel.Program
	// guarded expressions may loop over input, so they run under a
	// deadline.
	guarded bool
	// reads are the variables the expression reads.
	reads []string
	// variable is set when the expression is nothing but one of the string
	// variables (client_id: the commonest header rule): Value reads it
	// without running the program, which gives the same string.
	variable string
}

// HeaderExpr is a compiled header rule: the upstream header Name and the
// expression that yields its value.
type HeaderExpr struct {
	Name string
	Expr
}

// boundedSizes tells the cost estimator how large inputs can be, so only
// expressions whose cost grows without bound with the input are rejected.
type boundedSizes struct{}

func (boundedSizes) EstimateSize(checker.AstNode) *checker.SizeEstimate {
	return &checker.SizeEstimate{Min: 0, Max: maxInputSize}
}

func (boundedSizes) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// compileExpr compiles src and checks its result type and cost. It returns
// the message to report at the expression's field path on failure.
func compileExpr(env *cel.Env, src string, wantBool bool) (*Expr, bool, string) {
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		msgs := make([]string, 0, len(iss.Errors()))
		for _, e := range iss.Errors() {
			msgs = append(msgs, strings.TrimSuffix(e.Message, " (in container '')"))
		}
		return nil, false, strings.Join(msgs, "; ")
	}
	out := ast.OutputType()
	if wantBool && !out.IsExactType(types.BoolType) && !out.IsExactType(types.DynType) {
		return nil, false, fmt.Sprintf("must be a bool expression, is %s", out)
	}
	est, err := env.EstimateCost(ast, boundedSizes{})
	if err != nil {
		return nil, false, fmt.Sprintf("cannot estimate cost: %v", err)
	}
	if est.Max > maxEstimatedCost {
		return nil, false, fmt.Sprintf("too expensive: estimated cost up to %s exceeds %d", costString(est.Max), maxEstimatedCost)
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.InterruptCheckFrequency(interruptEvery))
	if err != nil {
		return nil, false, err.Error()
	}
	uses := false
	names := referencedNames(ast)
	for _, name := range names {
		if name == "request" {
			uses = true
		}
	}
	e := &Expr{Source: src, prg: prg, guarded: est.Max > cheapCost, reads: names}
	if x := ast.NativeRep().Expr(); x.Kind() == celast.IdentKind {
		if _, ok := (&Vars{}).stringVar(x.AsIdent()); ok {
			e.variable = x.AsIdent()
		}
	}
	return e, uses, ""
}

func costString(c uint64) string {
	if c == math.MaxUint64 {
		return "unbounded"
	}
	return strconv.FormatUint(c, 10)
}

// referencedNames lists the variables an expression reads.
func referencedNames(ast *cel.Ast) []string {
	var names []string
	for _, r := range ast.NativeRep().ReferenceMap() {
		if r.Name != "" {
			names = append(names, r.Name)
		}
	}
	return names
}

// Vars are the CEL variables of one Check. It is an interpreter.Activation
// so evaluation reads the fields directly, with no map built per Check.
type Vars struct {
	Claims map[string]any
	// ClaimsOf, when Claims is nil, gives them on the first read of
	// `claims`: a cached token's view builds its map only then.
	ClaimsOf token.ClaimReader
	ClientID string
	SpiffeID string
	Scopes   []string
	Issuer   string
	// IssuerVars are a templated issuer's variables ({tenant}); nil when
	// the issuer is not templated.
	IssuerVars map[string]string
	Credential string
	// DPoPJKT is the thumbprint of the key of the request's verified DPoP
	// proof, "" when there is none.
	DPoPJKT string
	Request *Request
	// Peer yields the caller's mTLS identity as Envoy reports it, read
	// only when an expression asks; nil for a connection without one.
	Peer func() map[string]any
	// Form is the parsed form body of a token-endpoint request; CEL's
	// `form` is built from it, without secrets, only when read (form.go).
	Form map[string]string
	// Grant is the verified RFC 7523 authorization grant (grant.go); nil
	// when the request carries none.
	Grant map[string]any

	request map[string]any
	form    map[string]string
}

var _ interpreter.Activation = (*Vars)(nil)

// ResolveName implements interpreter.Activation. Strings are returned as
// CEL values, which evaluation takes as they are: a plain string would be
// boxed once here and converted (boxed again) by CEL on every read.
func (v *Vars) ResolveName(name string) (any, bool) {
	if s, ok := v.stringVar(name); ok {
		return types.String(s), true
	}
	switch name {
	case "claims":
		if v.Claims == nil && v.ClaimsOf != nil {
			return &lazyClaims{src: v.ClaimsOf}, true
		}
		if v.Claims == nil {
			return map[string]any{}, true
		}
		return v.Claims, true
	case "scopes":
		if v.Scopes == nil {
			return []string{}, true
		}
		return v.Scopes, true
	case "issuer_vars":
		if v.IssuerVars == nil {
			return map[string]string{}, true
		}
		return v.IssuerVars, true
	case "request":
		if v.request == nil {
			v.request = v.Request.celValue()
		}
		return v.request, true
	case "form":
		if v.form == nil {
			v.form = FormVar(v.Form)
		}
		return v.form, true
	case "grant":
		if v.Grant == nil {
			return map[string]any{}, true
		}
		return v.Grant, true
	case "peer":
		if v.Peer == nil {
			return noPeer, true
		}
		return v.Peer(), true
	}
	return nil, false
}

// stringVar is the value of one of the string variables ResolveName
// gives; false for any other name.
func (v *Vars) stringVar(name string) (string, bool) {
	switch name {
	case "client_id":
		return v.ClientID, true
	case "spiffe_id":
		return v.SpiffeID, true
	case "issuer":
		return v.Issuer, true
	case "credential":
		return v.Credential, true
	case "dpop_jkt":
		return v.DPoPJKT, true
	}
	return "", false
}

// noPeer is the peer of a connection without an mTLS identity.
var noPeer = map[string]any{"principal": "", "uri_sans": []string{}, "certificate_sha256": ""}

// Parent implements interpreter.Activation.
func (v *Vars) Parent() interpreter.Activation { return nil }

func (r *Request) celValue() map[string]any {
	if r == nil {
		return map[string]any{"method": "", "host": "", "path": "", "query": "", "headers": map[string]string{}}
	}
	h := r.HeaderMap()
	if h == nil {
		h = map[string]string{}
	}
	return map[string]any{"method": r.Method, "host": r.Host, "path": r.Path, "query": r.Query, "headers": h}
}

// True evaluates a require expression. An error (a missing claim, a runtime
// cost overrun) is false: a requirement that cannot be shown does not hold.
func (e *Expr) True(ctx context.Context, v *Vars) (bool, error) {
	out, err := e.eval(ctx, v)
	if err != nil {
		return false, fmt.Errorf("policy: %q: %w", e.Source, err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("policy: %q: result is %s, not bool", e.Source, out.Type())
	}
	return bool(b), nil
}

// Value evaluates a header expression to the header's value. ok is false
// when the header is to be left unset: an error, null, an empty string, an
// unsupported type, or a value with CR, LF or NUL, which could split the
// upstream request's headers.
func (e *Expr) Value(ctx context.Context, v *Vars) (string, bool) {
	s, ok := v.stringVar(e.variable)
	if !ok {
		out, err := e.eval(ctx, v)
		if err != nil {
			return "", false
		}
		s, ok = headerString(out)
	}
	if !ok || s == "" || breaksHeader(s) {
		return "", false
	}
	return s, true
}

// breaksHeader reports whether s holds CR, LF or NUL, which no header
// value may: strings.ContainsAny would build its set on every allow.
func breaksHeader(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= '\r' && (c == '\r' || c == '\n' || c == 0) {
			return true
		}
	}
	return false
}

func (e *Expr) eval(ctx context.Context, v *Vars) (ref.Val, error) {
	if !e.guarded {
		out, _, err := e.prg.Eval(v)
		return out, err
	}
	ctx, cancel := context.WithTimeout(ctx, maxEvalTime)
	defer cancel()
	out, _, err := e.prg.ContextEval(ctx, v)
	return out, err
}

func headerString(v ref.Val) (string, bool) {
	switch x := v.(type) {
	case types.String:
		return string(x), true
	case types.Bool:
		return strconv.FormatBool(bool(x)), true
	case types.Int:
		return strconv.FormatInt(int64(x), 10), true
	case types.Uint:
		return strconv.FormatUint(uint64(x), 10), true
	case types.Double:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return "", false
		}
		return strconv.FormatFloat(f, 'f', -1, 64), true
	case *types.Optional:
		if !x.HasValue() {
			return "", false
		}
		return headerString(x.GetValue())
	case traits.Lister:
		n, ok := x.Size().(types.Int)
		if !ok {
			return "", false
		}
		parts := make([]string, 0, int(n))
		for i := types.Int(0); i < n; i++ {
			p, ok := headerString(x.Get(i))
			if !ok {
				return "", false
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, ","), true
	}
	return "", false
}

// ClaimString is the claim name when it is a string, from Claims or
// ClaimsOf, without building a lazily read token's map.
func (v *Vars) ClaimString(name string) (string, bool) {
	if v.Claims == nil && v.ClaimsOf != nil {
		return v.ClaimsOf.ClaimString(name)
	}
	s, ok := v.Claims[name].(string)
	return s, ok
}
