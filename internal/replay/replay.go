package replay

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrReplayed means the (issuer, jti) pair was seen before and has not
	// expired.
	ErrReplayed = errors.New("replay: jti already used")
	// ErrFull means the store holds its maximum of unexpired entries. It
	// never evicts one that has not expired, so the token is denied.
	ErrFull = errors.New("replay: store full")
	// ErrUnavailable means the store could not be asked (network error,
	// timeout, server error). Whether the jti was recorded is unknown, so
	// the caller fails closed.
	ErrUnavailable = errors.New("replay: store unavailable")
)

// Store records single-use token ids.
type Store interface {
	// Claim records (issuer, jti) until the given time. It returns nil the
	// first time, ErrReplayed after that until the entry expires, ErrFull
	// when the store cannot hold another entry; any other error means the
	// store could not be asked (callers fail closed with a 503 unless told
	// otherwise).
	Claim(ctx context.Context, issuer, jti string, until time.Time) error
}
