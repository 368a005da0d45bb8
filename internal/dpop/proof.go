package dpop

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/token"
)

// Errors Verify returns, wrapped with detail. Callers map them to reason
// codes with errors.Is.
var (
	// ErrMalformed means the proof is not a compact JWS of type dpop+jwt
	// with the claims RFC 9449 §4.2 requires, of the right JSON types.
	ErrMalformed = errors.New("dpop: malformed proof")
	// ErrAlgorithm means alg is not on the allow-list (symmetric and none
	// never are).
	ErrAlgorithm = errors.New("dpop: algorithm not allowed")
	// ErrKey means the jwk header is missing, private, symmetric, not a
	// valid public key, or does not fit alg.
	ErrKey = errors.New("dpop: unusable jwk")
	// ErrSignature means the proof is not signed by the key it carries.
	ErrSignature = errors.New("dpop: signature does not verify")
	// ErrMethod means htm is not the request's method.
	ErrMethod = errors.New("dpop: htm does not match the request")
	// ErrURI means htu is not the request's URI (or is not a URI we accept).
	ErrURI = errors.New("dpop: htu does not match the request")
	// ErrStale means iat is older than the allowed age.
	ErrStale = errors.New("dpop: proof too old")
	// ErrFuture means iat is ahead of our clock by more than the skew.
	ErrFuture = errors.New("dpop: proof issued in the future")
	// ErrATH means ath is missing or is not the hash of the access token.
	ErrATH = errors.New("dpop: ath does not match the access token")
	// ErrNonce means the proof lacks a nonce we issued, or carries one that
	// is no longer current: the client must retry with DPoP-Nonce.
	ErrNonce = errors.New("dpop: nonce missing or not current")
)

// DefaultAlgorithms are the asymmetric algorithms a proof may use when a
// rule names none: the key table's default asymmetric ones.
var DefaultAlgorithms = keys.AlgorithmNames(false, true)

const (
	// DefaultMaxAge is how old a proof may be: long enough for a client's
	// clock to lag a little, short enough that a stolen proof is soon
	// useless even where no replay store is shared.
	DefaultMaxAge = 60 * time.Second
	// DefaultSkew is how far ahead of our clock a proof's iat may be.
	DefaultSkew = 5 * time.Second
	// maxProofBytes bounds the work on a proof: an RSA-4096 jwk and every
	// claim fit in well under 4 KiB.
	maxProofBytes = 8 << 10
	// maxJTIBytes bounds the jti the replay store keeps.
	maxJTIBytes = 256
)

// Request is the HTTP request a proof must describe, as Envoy saw it.
type Request struct {
	Method string
	// Scheme is :scheme ("https"), Authority is :authority (host and
	// optional port), Path is :path without its query string.
	Scheme, Authority, Path string
}

// Options are what a rule requires of a proof.
type Options struct {
	// Algorithms is the allow-list; empty means DefaultAlgorithms.
	Algorithms []string
	// MaxAge and Skew bound iat; zero means the defaults.
	MaxAge, Skew time.Duration
	// AccessToken, when set, must be bound by the proof's ath.
	AccessToken string
	// Nonces, when set, must vouch for the proof's nonce.
	Nonces *Nonces
}

// Proof is a verified DPoP proof.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint (base64url) of the proof's key:
	// what a bound token's cnf.jkt names.
	JKT string
	// JTI is the proof's unique id, to be claimed once.
	JTI string
	// IssuedAt is iat.
	IssuedAt time.Time
}

// Until is when the proof stops being acceptable by its iat, so a replay
// store may forget its jti after it.
func (p *Proof) Until(o *Options) time.Time {
	return p.IssuedAt.Add(o.maxAge() + o.skew())
}

func (o *Options) maxAge() time.Duration {
	if o.MaxAge > 0 {
		return o.MaxAge
	}
	return DefaultMaxAge
}

func (o *Options) skew() time.Duration {
	if o.Skew > 0 {
		return o.Skew
	}
	return DefaultSkew
}

func (o *Options) allows(alg string) bool {
	list := o.Algorithms
	if len(list) == 0 {
		list = DefaultAlgorithms
	}
	for _, a := range list {
		if a == alg {
			return true
		}
	}
	return false
}

// Verify checks the DPoP header value proof for req, as RFC 9449 §4.3 lists:
// one well-formed JWS of typ dpop+jwt, an allowed asymmetric alg, a public
// jwk that verifies the signature, htm and htu equal to the request's, iat
// within the window, and ath and nonce when o asks for them. Keeping the jti
// single-use is the caller's part.
func Verify(proof string, req Request, o *Options, now time.Time) (*Proof, error) {
	tok, err := token.Parse(proof, token.Limits{MaxTokenBytes: maxProofBytes})
	if err != nil {
		if errors.Is(err, token.ErrAlgorithm) {
			return nil, fmt.Errorf("%w: %w", ErrAlgorithm, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !tok.Header.TypeIs("dpop+jwt") {
		return nil, fmt.Errorf("%w: typ is not dpop+jwt", ErrMalformed)
	}
	if !o.allows(tok.Header.Alg) || strings.HasPrefix(tok.Header.Alg, "HS") {
		return nil, fmt.Errorf("%w: %.16q", ErrAlgorithm, tok.Header.Alg)
	}
	if tok.Header.JWK == "" {
		return nil, fmt.Errorf("%w: no jwk header", ErrKey)
	}
	pub, jkt, err := PublicKey(tok.Header.JWK, tok.Header.Alg)
	if err != nil {
		return nil, err
	}
	if _, err := tok.VerifiedBy([]*keys.Key{{Public: pub}}); err != nil {
		if errors.Is(err, token.ErrSignature) {
			return nil, fmt.Errorf("%w: %w", ErrSignature, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}

	c := tok.Claims()
	htm, ok1 := c["htm"].(string)
	htu, ok2 := c["htu"].(string)
	switch {
	case !tok.HasID || tok.ID == "" || len(tok.ID) > maxJTIBytes:
		return nil, fmt.Errorf("%w: jti missing, empty or longer than %d bytes", ErrMalformed, maxJTIBytes)
	case !ok1 || !ok2:
		return nil, fmt.Errorf("%w: htm and htu must be strings", ErrMalformed)
	case !tok.HasIssuedAt:
		return nil, fmt.Errorf("%w: iat missing", ErrMalformed)
	}
	// RFC 9110 §9.1: methods are case-sensitive.
	if htm != req.Method {
		return nil, ErrMethod
	}
	want, ok := requestURI(req)
	if !ok {
		return nil, fmt.Errorf("%w: the request URI cannot be normalised", ErrURI)
	}
	if got, ok := NormalizeHTU(htu); !ok || got != want {
		return nil, ErrURI
	}
	iat := tok.IssuedAtTime()
	switch {
	case iat.After(now.Add(o.skew())):
		return nil, fmt.Errorf("%w (skew %s)", ErrFuture, o.skew())
	case now.Sub(iat) > o.maxAge():
		return nil, fmt.Errorf("%w (max age %s)", ErrStale, o.maxAge())
	}
	if o.AccessToken != "" {
		ath, ok := c["ath"].(string)
		if !ok || subtle.ConstantTimeCompare([]byte(ath), []byte(ATH(o.AccessToken))) != 1 {
			return nil, ErrATH
		}
	}
	if o.Nonces != nil {
		nonce, ok := c["nonce"].(string)
		if !ok || !o.Nonces.Valid(nonce) {
			return nil, ErrNonce
		}
	}
	return &Proof{JKT: jkt, JTI: tok.ID, IssuedAt: iat}, nil
}

// ATH is the access token hash a proof carries (RFC 9449 §4.2): the
// base64url SHA-256 of the token's ASCII bytes.
func ATH(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
