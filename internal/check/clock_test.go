package check

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/policytest"
	"github.com/extauthz/extauthz/internal/replay"
)

// TestCheckNow: on the system clock a Check validates at its start (no
// second clock read); an injected clock is always read, so tests and
// `extauthz check --now` see their own instant.
func TestCheckNow(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	policytest.Write(t, file, policytest.Versioned(0))
	snap, err := policy.Load([]string{file}, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Policy: policy.NewStore(snap), Replay: replay.NewMemory(replay.MemoryConfig{})}
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	r := &httpRequest{start: start}
	if got := New(cfg).checkNow(r); !got.Equal(start) {
		t.Errorf("system clock: checkNow = %v, want the Check's start %v", got, start)
	}
	injected := start.Add(time.Hour)
	cfg.Now = func() time.Time { return injected }
	if got := New(cfg).checkNow(r); !got.Equal(injected) {
		t.Errorf("injected clock: checkNow = %v, want %v", got, injected)
	}
	// A view no Check started reads the clock.
	if got := New(cfg).checkNow(&httpRequest{}); !got.Equal(injected) {
		t.Errorf("no start: checkNow = %v, want %v", got, injected)
	}
}
