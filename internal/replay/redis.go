package replay

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// DefaultRedisTimeout bounds one claim, retries included. Redis answers
	// a SET in well under a millisecond on a healthy network; waiting longer
	// than this only holds the request that Envoy is also timing.
	DefaultRedisTimeout = 50 * time.Millisecond
	// DefaultKeyPrefix namespaces the keys in a shared Redis.
	DefaultKeyPrefix = "extauthz:replay:"
)

// RedisConfig configures NewRedis.
type RedisConfig struct {
	// URL names the server; see the package documentation for the forms.
	URL string
	// Timeout bounds each Claim and Ping; zero means DefaultRedisTimeout.
	Timeout time.Duration
	// KeyPrefix is put before the hex hash in every key; empty means
	// DefaultKeyPrefix.
	KeyPrefix string
	// Logger receives go-redis's own log lines: failed dials and queries
	// as warnings, failovers as info. go-redis has a single logger per
	// process: the Logger of the most recent NewRedis that set one
	// receives them; with none set, slog.Default() does.
	Logger *slog.Logger
}

// Redis is a Store shared by every replica that points at the same Redis.
// Each claim is one atomic SET NX, so two replicas racing on the same jti
// cannot both win.
type Redis struct {
	client  redis.UniversalClient
	timeout time.Duration
	prefix  string
}

// NewRedis returns a client for the Redis named by cfg.URL. It does not
// contact the server (go-redis dials on first use and redials by itself
// after failures), so a Redis that is down at startup is not fatal; call
// Ping to find out. Having no I/O to bound, it does not use ctx.
func NewRedis(ctx context.Context, cfg RedisConfig) (*Redis, error) {
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("replay: negative redis timeout %s", cfg.Timeout)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultRedisTimeout
	}
	prefix := cfg.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	client, err := newRedisClient(cfg.URL)
	if err != nil {
		return nil, err
	}
	useRedisLogger(cfg.Logger)
	return &Redis{client: client, timeout: timeout, prefix: prefix}, nil
}

// Claim implements Store. A write Redis refuses for want of memory (OOM:
// at maxmemory with nothing its maxmemory-policy may evict) wraps ErrFull;
// other errors talking to Redis wrap ErrUnavailable. Redis has no bound per
// namespace: maxmemory is its only one. An until that is not in the future
// is accepted without being stored: such a token has already expired and
// should have been rejected before reaching the store.
//
// The TTL is sent relative (PX) rather than absolute (PXAT) so that a Redis
// whose clock runs ahead of ours cannot drop entries early.
func (r *Redis) Claim(ctx context.Context, namespace, jti string, until time.Time) error {
	sum, err := digest(namespace, jti)
	if err != nil {
		return err
	}
	ttl := time.Until(until)
	if ttl <= 0 {
		return nil
	}
	// Round up: go-redis would truncate to whole milliseconds (and log
	// below one), letting the key lapse before the token.
	ttl = (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	set, err := r.client.SetNX(ctx, r.key(sum), "1", ttl).Result()
	if redis.IsOOMError(err) {
		// Redis at maxmemory with nothing it may evict refuses a write
		// before running it: the jti is known not to be recorded, and the
		// store is full, not down. So a flood that fills Redis is denied
		// like a full memory store, and never turns --replay-fail-open into
		// accepting replays.
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if !set {
		return ErrReplayed
	}
	return nil
}

// Ping reports whether Redis answers within the timeout; errors wrap
// ErrUnavailable.
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Close releases the connections.
func (r *Redis) Close() error {
	if err := r.client.Close(); err != nil {
		return fmt.Errorf("replay: close redis: %w", err)
	}
	return nil
}

func (r *Redis) key(sum [32]byte) string {
	var buf [64]byte
	hex.Encode(buf[:], sum[:])
	return r.prefix + string(buf[:])
}

// newRedisClient picks the go-redis client for the URL scheme. Parse
// errors never quote the URL, which may hold a password.
func newRedisClient(raw string) (redis.UniversalClient, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("replay: redis URL: %w", err)
	}
	// go-redis parses redis, rediss and unix URLs; the suffix picks which
	// parser and client, and is stripped before parsing.
	plain := *u
	plain.Scheme = strings.TrimSuffix(strings.TrimSuffix(u.Scheme, "-sentinel"), "-cluster")
	// A retried SET NX whose first try was applied reads as a replay and
	// refuses a token's first use, so commands are not retried unless the
	// URL asks for it; the claim fails closed instead.
	retries := -1
	if u.Query().Has("max_retries") {
		retries = 0 // keep what the URL says
	}
	switch u.Scheme {
	case "redis", "rediss", "unix":
		opts, err := redis.ParseURL(plain.String())
		if err != nil {
			return nil, fmt.Errorf("replay: redis URL: %w", err)
		}
		opts.ContextTimeoutEnabled = true
		if retries != 0 {
			opts.MaxRetries = retries
		}
		return redis.NewClient(opts), nil
	case "redis-sentinel", "rediss-sentinel":
		opts, err := redis.ParseFailoverURL(plain.String())
		if err != nil {
			return nil, fmt.Errorf("replay: redis sentinel URL: %w", err)
		}
		if opts.MasterName == "" {
			return nil, errors.New("replay: redis sentinel URL: master_name is required")
		}
		opts.ContextTimeoutEnabled = true
		if retries != 0 {
			opts.MaxRetries = retries
		}
		return redis.NewFailoverClient(opts), nil
	case "redis-cluster", "rediss-cluster":
		// ParseClusterURL ignores the path; refuse a database number rather
		// than silently use 0.
		if strings.Trim(u.Path, "/") != "" {
			return nil, errors.New("replay: redis cluster URL: a cluster has no database number")
		}
		plain.Path = ""
		opts, err := redis.ParseClusterURL(plain.String())
		if err != nil {
			return nil, fmt.Errorf("replay: redis cluster URL: %w", err)
		}
		opts.ContextTimeoutEnabled = true
		if retries != 0 {
			opts.MaxRetries = retries
		}
		return redis.NewClusterClient(opts), nil
	case "":
		return nil, errors.New(`replay: unknown store; want "memory" or a redis URL`)
	default:
		return nil, fmt.Errorf("replay: redis URL: unknown scheme %q", u.Scheme)
	}
}
