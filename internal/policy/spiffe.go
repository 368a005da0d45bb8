package policy

import (
	"errors"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// MatchSPIFFEPattern reports whether id, a SPIFFE ID, matches pattern.
// Patterns compare whole path segments, never string prefixes, so
// spiffe://example.org/ns/prod/* matches spiffe://example.org/ns/prod/sa/x
// only through its segments and never spiffe://example.org/ns/prod-evil/x:
//
//   - the trust domain must be equal;
//   - a literal segment must be equal;
//   - `*` matches exactly one segment;
//   - a final `**` matches one or more segments.
//
// An id that is not a valid SPIFFE ID matches nothing; a malformed pattern
// is an error.
func MatchSPIFFEPattern(id, pattern string) (bool, error) {
	ptd, psegs, err := splitPattern(pattern)
	if err != nil {
		return false, err
	}
	parsed, err := spiffeid.FromString(id)
	if err != nil {
		return false, nil
	}
	if parsed.TrustDomain().Name() != ptd {
		return false, nil
	}
	var isegs []string
	if p := parsed.Path(); p != "" {
		isegs = strings.Split(p[1:], "/")
	}
	for i, ps := range psegs {
		switch {
		case ps == "**":
			return len(isegs) > i, nil
		case i >= len(isegs):
			return false, nil
		case ps != "*" && ps != isegs[i]:
			return false, nil
		}
	}
	return len(isegs) == len(psegs), nil
}

var errPattern = errors.New("policy: SPIFFE ID pattern must be spiffe://<trust domain>[/<segment>|/*]...[/**]")

// splitPattern validates a pattern: a SPIFFE ID whose segments may be `*`,
// and whose last segment may be `**`.
func splitPattern(pattern string) (string, []string, error) {
	rest, ok := strings.CutPrefix(pattern, "spiffe://")
	if !ok {
		return "", nil, errPattern
	}
	td, path, slash := strings.Cut(rest, "/")
	if _, err := spiffeid.TrustDomainFromString(td); err != nil || td == "" || (slash && path == "") {
		return "", nil, errPattern
	}
	if path == "" {
		return td, nil, nil
	}
	segs := strings.Split(path, "/")
	literal := make([]string, 0, len(segs))
	for i, s := range segs {
		switch {
		case s == "**" && i != len(segs)-1:
			return "", nil, errPattern
		case s == "*" || s == "**":
			literal = append(literal, "x")
		default:
			literal = append(literal, s)
		}
	}
	if err := spiffeid.ValidatePath("/" + strings.Join(literal, "/")); err != nil {
		return "", nil, errPattern
	}
	return td, segs, nil
}

// spiffeFunctions adds `string.matches_pattern(string)` to CEL.
func spiffeFunctions() cel.EnvOption {
	return cel.Function("matches_pattern",
		cel.MemberOverload("string_matches_pattern_string",
			[]*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
			cel.BinaryBinding(func(id, pattern ref.Val) ref.Val {
				ok, err := MatchSPIFFEPattern(string(id.(types.String)), string(pattern.(types.String)))
				if err != nil {
					return types.NewErr("%v", err)
				}
				return types.Bool(ok)
			})))
}
