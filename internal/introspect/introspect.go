package introspect

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/extauthz/extauthz/internal/token"
)

var (
	// ErrInactive means the endpoint said the token is not active: revoked,
	// expired, unknown, or not for us. A 401 invalid_token.
	ErrInactive = errors.New("introspect: token is not active")
	// ErrUnavailable means no answer could be had: the endpoint is down,
	// slow, over the concurrency limit, or sent something that is not a
	// valid introspection response. A 503: the token may be good.
	ErrUnavailable = errors.New("introspect: endpoint unavailable")

	errRedirect = errors.New("redirect refused")
	errCanceled = errors.New("the Check ended while waiting")
)

// Outcomes of a lookup that reached for the endpoint. They are metric label
// values: keep them stable.
const (
	outcomeActive      = "active"
	outcomeInactive    = "inactive"
	outcomeStatus      = "http_status"
	outcomeInvalid     = "invalid"
	outcomeTooLarge    = "too_large"
	outcomeTimeout     = "timeout"
	outcomeNetwork     = "network"
	outcomeRedirect    = "redirect_refused"
	outcomeDiscovery   = "discovery"
	outcomeOverCap     = "over_capacity"
	outcomeOffline     = "offline"
	outcomeSignature   = "jwt_invalid"
	outcomeKeysMissing = "keys_unavailable"
)

// fault is a failed introspection with the outcome it is counted under. It
// is ErrUnavailable to errors.Is.
type fault struct {
	outcome string
	err     error
}

func (f *fault) Error() string        { return "introspect: " + f.err.Error() }
func (f *fault) Unwrap() error        { return f.err }
func (f *fault) Is(target error) bool { return target == ErrUnavailable }

func faultf(outcome, format string, args ...any) error {
	return &fault{outcome: outcome, err: fmt.Errorf(format, args...)}
}

// Introspect answers whether raw is an active token of the issuer, from the
// cache or the endpoint. An active token comes back as a *token.Token whose
// Claims are the response's members; the caller must not change it, as
// other Checks share it. The error is ErrInactive, ErrUnavailable, or the
// context's.
func (c *Client) Introspect(ctx context.Context, raw string, now time.Time) (*token.Token, error) {
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
	if e, ok := c.cache.get(sum, now); ok {
		c.m.cacheLookup(c.label, true)
		if e.tok == nil {
			return nil, ErrInactive
		}
		return e.tok, nil
	}
	c.m.cacheLookup(c.label, false)
	tok, err, _ := c.flight.do(ctx.Done(), sum, func() (*token.Token, error) {
		// A flight that landed between our miss and now has cached its
		// answer; asking again would be a second request for one token.
		if e, ok := c.cache.get(sum, now); ok {
			if e.tok == nil {
				return nil, ErrInactive
			}
			return e.tok, nil
		}
		return c.lookup(ctx, raw, sum, now)
	})
	return tok, err
}

// lookup asks the endpoint and caches the answer. It runs once per token
// digest at a time. The request has its own deadline, detached from the
// Check that started it: the Checks waiting on it must not fail because
// that one ended. Waiting for a concurrency slot is bounded by both.
func (c *Client) lookup(check context.Context, raw string, sum [sha256.Size]byte, now time.Time) (*token.Token, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(check), c.spec.Timeout)
	defer cancel()
	tok, err := c.ask(check, ctx, raw, now)
	outcome := outcomeActive
	switch {
	case errors.Is(err, ErrInactive):
		outcome = outcomeInactive
		c.cache.add(sum, &entry{until: now.Add(c.spec.NegativeTTL)})
	case err != nil:
		var f *fault
		if errors.As(err, &f) {
			outcome = f.outcome
		} else {
			outcome, err = outcomeNetwork, &fault{outcome: outcomeNetwork, err: err}
		}
	default:
		until := now.Add(c.spec.CacheTTL)
		if tok.HasExpiry && tok.ExpiryTime().Before(until) {
			until = tok.ExpiryTime()
		}
		if now.Before(until) {
			c.cache.add(sum, &entry{tok: tok, until: until})
		}
	}
	c.m.request(c.label, outcome)
	switch {
	case outcome == outcomeOverCap || outcome == outcomeOffline:
		// Not the endpoint's failure: we never asked it.
	case err != nil && !errors.Is(err, ErrInactive):
		c.down.failed(c, err)
	default:
		c.down.recovered(c)
	}
	return tok, err
}

// ask takes a concurrency slot and makes one introspection request. A
// Check waits for a slot until the timeout, or until Envoy gives up on the
// Check (its ext_authz timeout is often the shorter): a slot got after that
// would be spent on an answer nobody waits for.
func (c *Client) ask(check, ctx context.Context, raw string, now time.Time) (*token.Token, error) {
	if c.offline {
		return nil, faultf(outcomeOffline, "offline: introspection endpoints are not called")
	}
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return nil, faultf(outcomeOverCap, "%d requests in flight (max_concurrency) for %s", cap(c.slots), c.spec.Timeout)
	case <-check.Done():
		return nil, faultf(outcomeOverCap, "%d requests in flight (max_concurrency) until the Check ended", cap(c.slots))
	}
	endpoint, err := c.resolve(ctx)
	if err != nil {
		return nil, err
	}
	return c.post(ctx, endpoint, raw, now)
}

// endpointState is the endpoint in use, set once (by config or discovery).
type endpointState struct {
	mu  sync.Mutex
	url string
}

func (e *endpointState) set(u string) {
	e.mu.Lock()
	e.url = u
	e.mu.Unlock()
}

func (e *endpointState) get() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.url
}

// downState logs an outage when it begins and when it ends.
type downState struct{ down atomic.Bool }

func (d *downState) failed(c *Client, err error) {
	if !d.down.Swap(true) {
		c.log.Error("introspect: endpoint failing; tokens not in the cache get 503 until it answers", "error", err)
	}
}

func (d *downState) recovered(c *Client) {
	if d.down.Swap(false) {
		c.log.Info("introspect: endpoint answering again")
	}
}
