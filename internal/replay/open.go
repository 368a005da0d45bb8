package replay

import (
	"context"
	"errors"
	"io"
)

// Open builds the Store named by spec, the value of the --replay-store flag:
// "memory" for a Memory store configured by mem, or a Redis URL (see the
// package documentation) for a Redis store configured by rc, whose URL field
// is replaced by spec. The Closer releases the store; the Store is a *Memory
// or a *Redis, so a caller that wants a startup Ping type-asserts.
//
// An empty spec is an error rather than "memory": in a deployment of many
// replicas, a Redis URL that expanded to nothing must not silently become a
// per-replica store that lets a token be replayed once per replica.
func Open(ctx context.Context, spec string, mem MemoryConfig, rc RedisConfig) (Store, io.Closer, error) {
	switch spec {
	case "":
		return nil, nil, errors.New(`replay: empty store; want "memory" or a redis URL`)
	case "memory":
		return NewMemory(mem), nopCloser{}, nil
	}
	rc.URL = spec
	r, err := NewRedis(ctx, rc)
	if err != nil {
		return nil, nil, err
	}
	return r, r, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
