package policy

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"google.golang.org/protobuf/types/known/structpb"

	policyv1 "github.com/extauthz/extauthz/proto/extauthz/policy/v1"
)

const (
	// maxMetadataName bounds a member name: it is a key in every
	// decision's dynamic_metadata and in Envoy's descriptors.
	maxMetadataName = 64
	// MaxMetadataList and MaxMetadataString bound one member's value, so a
	// token's claim list cannot swell every access log line.
	MaxMetadataList   = 64
	MaxMetadataString = 1 << 10
)

// FixedMetadata are the dynamic_metadata members extauthz itself sets
// (spec: the decision's metadata); a rule may not override them, or a
// rate limit keyed on client_id could be keyed on a CEL value instead.
var FixedMetadata = map[string]bool{
	"decision": true, "rule": true, "reason": true, "issuer": true,
	"client_id": true, "spiffe_id": true, "audit_decision": true,
}

// MetadataExpr is a rule's extra dynamic_metadata member: its name, a
// top-level member beside the fixed ones, and the expression of its value.
type MetadataExpr struct {
	Name string
	Expr
}

// metadata compiles a rule's metadata map, in name order so decisions and
// errors are stable.
func (c *compiler) metadata(el *errorList, path string, pr *policyv1.Rule, r *Rule) {
	names := make([]string, 0, len(pr.GetMetadata()))
	for n := range pr.GetMetadata() {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		mpath := fmt.Sprintf("%s.metadata[%q]", path, n)
		switch {
		case !isMetadataName(n):
			el.add(mpath, "not a valid metadata member name: lower-case letters, digits and '_', starting with a letter or '_', at most %d bytes", maxMetadataName)
			continue
		case FixedMetadata[n]:
			el.add(mpath, "%q is a member extauthz sets itself and may not be overridden", n)
			continue
		}
		src := pr.GetMetadata()[n]
		e, uses, msg := compileExpr(c.env, src, false)
		if msg != "" {
			c.exprError(el, mpath, src, msg)
			continue
		}
		r.usesRequest = r.usesRequest || uses
		r.Metadata = append(r.Metadata, &MetadataExpr{Name: n, Expr: *e})
	}
}

func isMetadataName(s string) bool {
	if s == "" || len(s) > maxMetadataName || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '_' {
			return false
		}
	}
	return true
}

// MetadataValue evaluates a metadata member. It returns an error when the
// member is to be left unset: an evaluation error, null, a map or another
// type, a non-finite number, a list over MaxMetadataList or holding
// anything but scalars, or a string over MaxMetadataString or with a
// control character (CR, LF, NUL, any C0 or DEL), which could forge an
// access log line or a header built from the value.
func (m *MetadataExpr) MetadataValue(ctx context.Context, v *Vars) (*structpb.Value, error) {
	out, err := m.eval(ctx, v)
	if err != nil {
		return nil, fmt.Errorf("policy: metadata %s: %w", m.Name, err)
	}
	if o, ok := out.(*types.Optional); ok {
		if !o.HasValue() {
			return nil, fmt.Errorf("policy: metadata %s: optional without a value", m.Name)
		}
		out = o.GetValue()
	}
	if l, ok := out.(traits.Lister); ok {
		n, ok := l.Size().(types.Int)
		if !ok || n > MaxMetadataList {
			return nil, fmt.Errorf("policy: metadata %s: list longer than %d", m.Name, MaxMetadataList)
		}
		vals := make([]*structpb.Value, 0, int(n))
		for i := types.Int(0); i < n; i++ {
			sv, err := scalarValue(l.Get(i))
			if err != nil {
				return nil, fmt.Errorf("policy: metadata %s[%d]: %w", m.Name, i, err)
			}
			vals = append(vals, sv)
		}
		return structpb.NewListValue(&structpb.ListValue{Values: vals}), nil
	}
	sv, err := scalarValue(out)
	if err != nil {
		return nil, fmt.Errorf("policy: metadata %s: %w", m.Name, err)
	}
	return sv, nil
}

func scalarValue(v ref.Val) (*structpb.Value, error) {
	switch x := v.(type) {
	case types.String:
		s := string(x)
		if len(s) > MaxMetadataString {
			return nil, fmt.Errorf("string longer than %d bytes", MaxMetadataString)
		}
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] == 0x7f {
				return nil, fmt.Errorf("string with a control character")
			}
		}
		return structpb.NewStringValue(s), nil
	case types.Bool:
		return structpb.NewBoolValue(bool(x)), nil
	case types.Int:
		return structpb.NewNumberValue(float64(x)), nil
	case types.Uint:
		return structpb.NewNumberValue(float64(x)), nil
	case types.Double:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("number is not finite")
		}
		return structpb.NewNumberValue(f), nil
	}
	return nil, fmt.Errorf("result is %s, not a string, number, bool or list of those", v.Type())
}
