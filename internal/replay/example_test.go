package replay_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/extauthz/extauthz/internal/replay"
)

func Example() {
	ctx := context.Background()
	// The flag value: "memory", or e.g. "redis://redis:6379/0",
	// "redis-sentinel://sentinel:26379?master_name=mymaster".
	store, closer, err := replay.Open(ctx, "memory", replay.MemoryConfig{}, replay.RedisConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer closer.Close()
	if r, ok := store.(*replay.Redis); ok {
		// Not fatal: the store reconnects by itself.
		if err := r.Ping(ctx); err != nil {
			fmt.Println("replay store not reachable yet:", err)
		}
	}

	exp := time.Now().Add(5 * time.Minute) // the assertion's exp
	const skew = 30 * time.Second
	for range 2 {
		err := store.Claim(ctx, "https://client.example", "jti-1", exp.Add(skew))
		switch {
		case err == nil:
			fmt.Println("accepted")
		case errors.Is(err, replay.ErrReplayed), errors.Is(err, replay.ErrFull):
			fmt.Println("denied:", err)
		default:
			fmt.Println("unavailable, fail closed:", err)
		}
	}
	// Output:
	// accepted
	// denied: replay: jti already used
}
