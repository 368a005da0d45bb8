package token

// knownClaims are the claims a Check probes on every cached hit, mostly to
// find them absent (cnf, nonce, at_hash on an ordinary access token). A
// Compact records which are present, so a view answers for an absent one
// without walking the payload, and keeps client_id and scope, read on
// every hit, as strings.
var knownClaims = [...]string{"client_id", "azp", "scope", "scp", "cnf", "nonce", "at_hash", "acr", "auth_time", "token_type"}

const (
	knownClientID = 0
	knownScope    = 2
)

// knownIndex is name's place in knownClaims, or -1.
func knownIndex(name string) int {
	switch name {
	case "client_id":
		return 0
	case "azp":
		return 1
	case "scope":
		return 2
	case "scp":
		return 3
	case "cnf":
		return 4
	case "nonce":
		return 5
	case "at_hash":
		return 6
	case "acr":
		return 7
	case "auth_time":
		return 8
	case "token_type":
		return 9
	}
	return -1
}

// lazyIndex is what a view knows of the known claims without the payload.
type lazyIndex struct {
	// present has bit i set when knownClaims[i] is in the payload; valid
	// only in a view (payload set, claims nil).
	present uint16
	// clientID and scope are those claims when they are strings (bits
	// knownClientID and knownScope of isString).
	clientID, scope string
	isString        uint16
}

// known is name's place in knownClaims when t is a view whose index can
// answer for it.
func (t *Token) known(name string) (i int, found bool) {
	if t.claims != nil || t.payload == "" {
		return -1, false
	}
	i = knownIndex(name)
	return i, i >= 0
}
