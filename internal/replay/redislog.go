package replay

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// go-redis has one process-wide logger, which by default prints to stderr
// with the standard log package, outside the configured format. NewRedis
// replaces it, once, with redisLogger, which writes each line to the
// Logger of the most recent RedisConfig that set one, or to slog.Default().
var (
	redisLogOnce sync.Once
	redisLog     atomic.Pointer[slog.Logger]
)

// useRedisLogger routes go-redis's log lines to log (nil keeps the current
// destination).
func useRedisLogger(log *slog.Logger) {
	if log != nil {
		redisLog.Store(log)
	}
	redisLogOnce.Do(func() { redis.SetLogger(redisLogger{}) })
}

// redisLogger adapts go-redis's Printf logging to slog. go-redis logs
// mostly trouble (failed dials, failed sentinel queries, a TTL it had to
// round), written as warnings; the few lines that only report a change of
// topology (a master found, a sentinel discovered) are info. The line
// itself, which names addresses but never a password or a key, is the
// detail.
type redisLogger struct{}

// redisInfoPrefixes begin go-redis's lines that report no trouble.
var redisInfoPrefixes = []string{
	"sentinel: selected addr=",
	"sentinel: new master=",
	"sentinel: discovered new sentinel=",
	"pubsub: reconnecting to new endpoint",
	"ring shard state changed",
	"cluster: slots ",
}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	log := redisLog.Load()
	if log == nil {
		log = slog.Default()
	}
	level := slog.LevelWarn
	for _, p := range redisInfoPrefixes {
		if strings.HasPrefix(format, p) {
			level = slog.LevelInfo
			break
		}
	}
	if !log.Enabled(ctx, level) {
		return
	}
	log.Log(ctx, level, "replay: go-redis", "detail", strings.TrimSpace(fmt.Sprintf(format, v...)))
}
