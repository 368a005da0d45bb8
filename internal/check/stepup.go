package check

import (
	"math"
	"slices"
	"time"

	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/token"
)

// stepUp holds a verified access token to the rule's RFC 9470 requirement:
// `acr` one of acr_values, `auth_time` at most max_age old (with the
// issuer's clock skew). It runs after the signature, audience and binding
// checks, so only a token the rule would otherwise take learns what
// authentication it lacks, and before the scope check, because the token a
// client gets after stepping up may carry other scopes. It returns the
// reason code of a deny, "" when the token meets the rule.
func stepUp(su *policy.StepUp, claims token.ClaimReader, is *policy.Issuer, now time.Time, tr *trace) string {
	if su == nil {
		return ""
	}
	if len(su.ACRValues) > 0 {
		acr, ok := claims.ClaimString("acr")
		switch {
		case !ok:
			if tr != nil {
				tr.add("step-up", false, "acr is absent or not a string; the rule wants one of %v", su.ACRValues)
			}
			return ReasonACR
		case !slices.Contains(su.ACRValues, acr):
			if tr != nil {
				tr.add("step-up", false, "acr %q is not one of %v", acr, su.ACRValues)
			}
			return ReasonACR
		}
		if tr != nil {
			tr.add("step-up", true, "acr %q is one of %v", acr, su.ACRValues)
		}
	}
	if su.MaxAge > 0 {
		authTime, _ := claims.Claim("auth_time")
		at, ok := numericDate(authTime)
		if !ok {
			if tr != nil {
				tr.add("step-up", false, "auth_time is absent or not a NumericDate; the rule wants an authentication at most %s old", su.MaxAge)
			}
			return ReasonAuthTimeMissing
		}
		age := now.Sub(at)
		if age > su.MaxAge+is.ClockSkew {
			if tr != nil {
				tr.add("step-up", false, "auth_time %s is %s old, more than max_age %s (clock skew %s)", at.Format(time.RFC3339), age.Round(time.Second), su.MaxAge, is.ClockSkew)
			}
			return ReasonAuthTimeStale
		}
		if tr != nil {
			tr.add("step-up", true, "auth_time %s is within max_age %s", at.Format(time.RFC3339), su.MaxAge)
		}
	}
	return ""
}

// numericDate reads a JSON number of seconds since the epoch, fractions
// included, as the token package reads exp; a string, a negative number or
// one past year 9999 is none.
func numericDate(v any) (time.Time, bool) {
	const maxDate = 253402300799
	switch n := v.(type) {
	case int64:
		if n >= 0 && n <= maxDate {
			return time.Unix(n, 0), true
		}
	case float64:
		if n >= 0 && n <= maxDate {
			sec, frac := math.Modf(n)
			return time.Unix(int64(sec), int64(frac*1e9)), true
		}
	}
	return time.Time{}, false
}

// stepUpDescription is the challenge's error_description for reason.
func stepUpDescription(reason string) string {
	if reason == ReasonACR {
		return "A different authentication level is required"
	}
	return "More recent authentication is required"
}

// stepUpParams are the insufficient_user_authentication challenge's
// parameters (RFC 9470 §3).
func (d *decision) stepUpParams() string {
	p := `error="insufficient_user_authentication", error_description="` + stepUpDescription(d.reason) + `"`
	if d.rule != nil && d.rule.Bearer != nil && d.rule.Bearer.StepUp != nil {
		p += ", " + d.rule.Bearer.StepUp.Params
	}
	return p
}
