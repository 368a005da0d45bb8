package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	policyv1 "github.com/extauthz/extauthz/proto/extauthz/policy/v1"
)

// StepUp is a bearer rule's RFC 9470 requirement on how, and how recently,
// the user authenticated.
type StepUp struct {
	// ACRValues are the acceptable `acr` values, in the rule's order of
	// preference; empty when acr is not checked.
	ACRValues []string
	// MaxAge bounds the age of `auth_time`; 0 when it is not checked.
	MaxAge time.Duration
	// Params are the challenge's `acr_values="..."` and `max_age="N"`
	// parameters, exactly those the rule sets (RFC 9470 §3).
	Params string
}

// stepUp compiles a bearer block's acr_values and max_age; nil when
// neither is set.
func stepUp(el *errorList, path string, b *policyv1.Bearer) *StepUp {
	if len(b.GetAcrValues()) == 0 && b.GetMaxAge() == nil {
		return nil
	}
	su := &StepUp{}
	var params []string
	for i, v := range b.GetAcrValues() {
		// The values are joined with spaces inside a quoted parameter.
		if v == "" || strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r == 0x7f }) {
			el.add(fmt.Sprintf("%s.acr_values[%d]", path, i), "must be a non-empty value without spaces, quotes, backslashes or control characters, got %q", v)
			continue
		}
		su.ACRValues = append(su.ACRValues, v)
	}
	if len(su.ACRValues) > 0 {
		params = append(params, `acr_values="`+strings.Join(su.ACRValues, " ")+`"`)
	}
	if d := b.GetMaxAge(); d != nil {
		switch age := d.AsDuration(); {
		case age <= 0:
			el.add(path+".max_age", "must be positive")
		case age%time.Second != 0:
			el.add(path+".max_age", "must be whole seconds: the challenge's max_age is an integer, got %s", age)
		default:
			su.MaxAge = age
			params = append(params, `max_age="`+strconv.FormatInt(int64(age/time.Second), 10)+`"`)
		}
	}
	su.Params = strings.Join(params, ", ")
	return su
}
