package policy

import "strings"

// Bounds of the `form` CEL variable. A token request has a dozen
// parameters of a few dozen bytes; the bounds keep CEL's inputs within what
// the cost estimator assumes (maxInputSize) whatever a client sends.
const (
	// MaxFormParams is how many parameters `form` holds at most. A body
	// with more exposable parameters yields an empty `form`, so that a
	// requirement on it fails closed rather than on an arbitrary subset.
	MaxFormParams = 32
	// MaxFormName and MaxFormValue bound one parameter; a longer one is
	// left out of `form`.
	MaxFormName  = 64
	MaxFormValue = 1 << 10
)

// formSecretParts are the words that mark a parameter as a secret wherever
// they occur in its folded name (client_secret, Password, subject_token,
// x-api-key, client_assertion, assertion).
var formSecretParts = []string{"secret", "password", "passwd", "token", "assertion", "credential", "apikey", "privatekey"}

// formSecretNames are secrets by their whole folded name: an authorization
// code and PKCE's verifier are as good as a token to whoever reads them.
var formSecretNames = map[string]bool{"code": true, "codeverifier": true, "devicecode": true, "otp": true, "pin": true}

// formPublicNames are the exact names that contain a secret word but are
// not secrets: they name token types, never carry one.
var formPublicNames = map[string]bool{
	"token_type_hint": true, "requested_token_type": true,
	"subject_token_type": true, "actor_token_type": true,
}

// FormSecret reports whether a form parameter may carry a secret and so is
// never shown to CEL. Names are folded (case, and the '_', '-', '.', ' ',
// '[' and ']' that frameworks read as separators) before the deny list is
// consulted, so Client_Secret and client-secret are secrets too; only the
// exact spellings of formPublicNames are exempt.
func FormSecret(name string) bool {
	if formPublicNames[name] {
		return false
	}
	folded := foldParam(name)
	if formSecretNames[folded] {
		return true
	}
	for _, p := range formSecretParts {
		if strings.Contains(folded, p) {
			return true
		}
	}
	return false
}

func foldParam(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		case c == '_' || c == '-' || c == '.' || c == ' ' || c == '[' || c == ']':
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// FormVar is the `form` CEL variable of a parsed form body: every
// parameter that is not a secret and fits the bounds, under its exact name.
// It is never nil.
func FormVar(params map[string]string) map[string]string {
	out := make(map[string]string, min(len(params), MaxFormParams))
	for k, v := range params {
		if k == "" || len(k) > MaxFormName || len(v) > MaxFormValue || FormSecret(k) {
			continue
		}
		if len(out) == MaxFormParams {
			return map[string]string{}
		}
		out[k] = v
	}
	return out
}
