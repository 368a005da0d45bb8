package replay

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrReplayed means the (namespace, jti) pair was seen before and has
	// not expired.
	ErrReplayed = errors.New("replay: jti already used")
	// ErrFull means the store holds its maximum of unexpired entries. It
	// never evicts one that has not expired, so the token is denied.
	// ErrNamespaceFull and ErrGroupFull wrap it.
	ErrFull = errors.New("replay: store full")
	// ErrNamespaceFull means the namespace holds its own maximum of
	// unexpired entries (MemoryConfig.MaxEntriesPerNamespace): that client
	// is refused while the others, and the store, may still have room.
	// errors.Is(err, ErrFull) holds for it.
	ErrNamespaceFull error = fullError("replay: namespace full")
	// ErrGroupFull means the namespaces of the claim's group together hold
	// their maximum (MemoryConfig.MaxEntriesPerGroup). errors.Is(err,
	// ErrFull) holds for it.
	ErrGroupFull error = fullError("replay: namespace group full")
	// ErrUnavailable means the store could not be asked (network error,
	// timeout, server error). Whether the jti was recorded is unknown, so
	// the caller fails closed.
	ErrUnavailable = errors.New("replay: store unavailable")
)

// Store records single-use token ids.
type Store interface {
	// Claim records (namespace, jti) until the given time. The namespace
	// scopes the jti to whoever mints it (an issuer's name; for a DPoP
	// proof, "dpop#" and its key's thumbprint) and is what a Memory store
	// bounds per client. Claim returns nil the first time, ErrReplayed
	// after that until the entry expires, an error wrapping ErrFull when the
	// store cannot hold another entry of this namespace; any other error
	// means the store could not be asked (callers fail closed with a 503
	// unless told otherwise).
	Claim(ctx context.Context, namespace, jti string, until time.Time) error
}

// fullError is a refusal for want of room that callers who only ask
// errors.Is(err, ErrFull) still see as one.
type fullError string

func (e fullError) Error() string        { return string(e) }
func (e fullError) Is(target error) bool { return target == ErrFull }
