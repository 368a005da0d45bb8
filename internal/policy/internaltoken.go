package policy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"

	"github.com/extauthz/extauthz/internal/txtoken"
	policyv1 "github.com/extauthz/extauthz/proto/extauthz/policy/v1"
)

const (
	// DefaultInternalTokenHeader carries the internal token upstream.
	DefaultInternalTokenHeader = "x-extauthz-token"
	defaultTokenLifetime       = 60 * time.Second
	// maxTokenLifetime bounds internal_token.lifetime: the token is for
	// one hop of one request, and a withdrawn key must stop mattering
	// soon.
	maxTokenLifetime = time.Hour
)

// InternalToken is a rule's compiled internal_token.
type InternalToken struct {
	Audience string
	// Header is lower-case; it is managed, so a client's copy is never
	// passed upstream.
	Header   string
	Lifetime time.Duration
	Purpose  string
	// Claims are the rule's extra claims, by name.
	Claims []*ClaimExpr
	// PerRequest is set when a claim reads `request` or `peer`: the token
	// then differs between requests of one credential and is never reused.
	PerRequest bool
}

// ClaimExpr is one extra claim of an internal token.
type ClaimExpr struct {
	Name string
	Expr
}

// internalToken compiles pr's internal_token; nil when there is none.
func (c *compiler) internalToken(el *errorList, path string, pi *policyv1.InternalToken) *InternalToken {
	if pi == nil {
		return nil
	}
	it := &InternalToken{Audience: pi.GetAudience(), Purpose: pi.GetPurpose(), Header: DefaultInternalTokenHeader}
	if it.Audience == "" {
		el.add(path+".audience", "required")
	}
	if h := pi.GetHeader(); h != "" {
		if name, ok := c.headerName(el, path+".header", h); ok {
			it.Header = name
		}
	}
	c.manage(el, path+".header", it.Header)
	it.Lifetime = positive(el, path+".lifetime", pi.GetLifetime(), defaultTokenLifetime)
	if it.Lifetime > maxTokenLifetime {
		el.add(path+".lifetime", "must be at most %s, got %s", maxTokenLifetime, it.Lifetime)
	}
	if it.Lifetime%time.Second != 0 {
		el.add(path+".lifetime", "must be whole seconds (exp is in seconds), got %s", it.Lifetime)
	}
	names := make([]string, 0, len(pi.GetClaims()))
	for n := range pi.GetClaims() {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		cpath := fmt.Sprintf("%s.claims[%q]", path, n)
		src := pi.GetClaims()[n]
		switch {
		case n == "":
			el.add(cpath, "a claim needs a name")
			continue
		case txtoken.Reserved(n):
			el.add(cpath, "%q is set by extauthz and cannot be overridden", n)
			continue
		}
		e, _, msg := compileExpr(c.env, src, false)
		if msg != "" {
			c.exprError(el, cpath, src, msg)
			continue
		}
		if ast, iss := c.env.Compile(src); iss.Err() == nil {
			if t := ast.OutputType(); notJSON(t) {
				el.add(cpath, "yields %s, which has no JSON form; give a string, number, bool, list or map", t)
				continue
			}
			for _, v := range referencedNames(ast) {
				if v == "request" || v == "peer" {
					it.PerRequest = true
				}
			}
		}
		it.Claims = append(it.Claims, &ClaimExpr{Name: n, Expr: *e})
	}
	return it
}

// notJSON reports a CEL type whose values have no JSON form.
func notJSON(t *types.Type) bool {
	for _, bad := range []*types.Type{types.BytesType, types.TimestampType, types.DurationType, types.TypeType} {
		if t.IsExactType(bad) {
			return true
		}
	}
	return false
}

// ErrClaimValue means a claim expression yielded a value with no JSON form.
var ErrClaimValue = errors.New("policy: claim value has no JSON form")

// Eval evaluates the token's extra claims. A claim that yields null or an
// empty optional is left out; an error, or a value with no JSON form, is an
// error: a token missing a claim its rule names would be a different token.
func (it *InternalToken) Eval(ctx context.Context, v *Vars) (map[string]any, error) {
	if len(it.Claims) == 0 {
		return nil, nil
	}
	out := make(map[string]any, len(it.Claims))
	for _, c := range it.Claims {
		val, err := c.eval(ctx, v)
		if err != nil {
			return nil, fmt.Errorf("policy: claim %s: %q: %w", c.Name, c.Source, err)
		}
		j, ok := jsonValue(val, 0)
		if !ok {
			return nil, fmt.Errorf("policy: claim %s: %q: %w (%s)", c.Name, c.Source, ErrClaimValue, val.Type())
		}
		if j != nil {
			out[c.Name] = j
		}
	}
	return out, nil
}

// maxJSONDepth bounds the nesting of a claim value.
const maxJSONDepth = 32

// jsonValue converts a CEL value to what encoding/json writes; nil for
// null or an empty optional.
func jsonValue(v ref.Val, depth int) (any, bool) {
	if depth > maxJSONDepth {
		return nil, false
	}
	switch x := v.(type) {
	case types.Null:
		return nil, true
	case types.String:
		return string(x), true
	case types.Bool:
		return bool(x), true
	case types.Int:
		return int64(x), true
	case types.Uint:
		return uint64(x), true
	case types.Double:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, false
		}
		return f, true
	case *types.Optional:
		if !x.HasValue() {
			return nil, true
		}
		return jsonValue(x.GetValue(), depth+1)
	case traits.Mapper:
		out := map[string]any{}
		it := x.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return nil, false
			}
			e, ok := jsonValue(x.Get(k), depth+1)
			if !ok {
				return nil, false
			}
			out[string(ks)] = e
		}
		return out, true
	case traits.Lister:
		n, ok := x.Size().(types.Int)
		if !ok {
			return nil, false
		}
		out := make([]any, 0, int(n))
		for i := types.Int(0); i < n; i++ {
			e, ok := jsonValue(x.Get(i), depth+1)
			if !ok {
				return nil, false
			}
			out = append(out, e)
		}
		return out, true
	}
	return nil, false
}

// UsesInternalTokens reports whether any rule mints an internal token.
func (s *Snapshot) UsesInternalTokens() bool {
	for _, r := range s.Rules {
		if r.InternalToken != nil {
			return true
		}
	}
	return false
}

// refuseInternalTokens reports every internal_token of files, for a server
// started without signing keys: why is the reason to give.
func refuseInternalTokens(files []*file, why string, errs *[]FieldError) {
	for _, f := range files {
		el := &errorList{file: f.name, src: f.src, errs: errs}
		for i, r := range f.pf.GetRules() {
			if r.GetInternalToken() != nil {
				el.add(fmt.Sprintf("rules[%d].internal_token", i), "%s", why)
			}
		}
	}
}
