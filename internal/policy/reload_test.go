package policy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/extauthz/extauthz/internal/policytest"
)

func TestReloadUnderConcurrentReads(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	policytest.Write(t, file, policytest.Versioned(0))
	opts := Options{Keys: offlinePlane(t)}
	snap, err := Load([]string{file}, opts)
	if err != nil {
		t.Fatal(err)
	}
	store := NewStore(snap)
	reg := prometheus.NewRegistry()
	rl := NewReloader(ReloaderConfig{Paths: []string{file}, Store: store, Options: opts, Registerer: reg})

	var (
		stop  atomic.Bool
		wg    sync.WaitGroup
		reads atomic.Int64
		bad   atomic.Value
	)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				s := store.Load()
				r, err := s.Select("", &Request{Method: "GET", Host: "h", Path: "/"})
				if err != nil || r == nil {
					bad.Store(fmt.Sprintf("select: %v %v", r, err))
					return
				}
				v := &Vars{}
				a, _ := r.Headers[0].Value(context.Background(), v)
				b, _ := r.Headers[1].Value(context.Background(), v)
				if a != b || "v"+a != s.Realm || "r"+a != r.Name {
					bad.Store(fmt.Sprintf("mixed policy: realm %s rule %s x-a %s x-b %s", s.Realm, r.Name, a, b))
					return
				}
				reads.Add(1)
			}
		}()
	}
	last := 0
	for i := 1; i <= 100; i++ {
		if i%2 == 0 {
			policytest.Write(t, file, policytest.Broken(i))
			if err := rl.Reload(context.Background()); err == nil || errors.Is(err, ErrUnchanged) {
				t.Fatalf("reload %d of an invalid policy: err = %v", i, err)
			}
			continue
		}
		policytest.Write(t, file, policytest.Versioned(i))
		if err := rl.Reload(context.Background()); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		last = i
	}
	stop.Store(true)
	wg.Wait()
	if msg := bad.Load(); msg != nil {
		t.Fatal(msg)
	}
	if reads.Load() == 0 {
		t.Fatal("no reads happened")
	}
	if got := store.Load().Realm; got != fmt.Sprintf("v%d", last) {
		t.Fatalf("serving realm %s, want v%d", got, last)
	}
	// The file still holds the last, rejected version: it is not
	// compiled and reported again at every poll.
	if err := rl.Reload(context.Background()); !errors.Is(err, ErrUnchanged) {
		t.Fatalf("reload of the already rejected files: %v, want unchanged", err)
	}
	if got := testutil.ToFloat64(rl.m.reloads.WithLabelValues("success")); got != 50 {
		t.Errorf("success reloads = %v, want 50", got)
	}
	if got := testutil.ToFloat64(rl.m.reloads.WithLabelValues("failure")); got != 50 {
		t.Errorf("failed reloads = %v, want 50", got)
	}
}

func TestReloadSeesConfigMapSymlinkSwap(t *testing.T) {
	// A ConfigMap volume: dir/policy.yaml -> ..data/policy.yaml, and
	// ..data -> ..2026_v1; an update creates ..2026_v2 and swaps ..data.
	dir := t.TempDir()
	mk := func(version string, body string) {
		d := filepath.Join(dir, version)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "policy.yaml"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mk("..2026_v1", policytest.Versioned(1))
	if err := os.Symlink("..2026_v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "policy.yaml"), filepath.Join(dir, "policy.yaml")); err != nil {
		t.Fatal(err)
	}
	opts := Options{Keys: offlinePlane(t)}
	snap, err := Load([]string{dir}, opts)
	if err != nil {
		t.Fatal(err)
	}
	store := NewStore(snap)
	rl := NewReloader(ReloaderConfig{Paths: []string{dir}, Store: store, Options: opts})
	if err := rl.Reload(context.Background()); !errors.Is(err, ErrUnchanged) {
		t.Fatalf("first reload: %v, want unchanged", err)
	}
	mk("..2026_v2", policytest.Versioned(2))
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink("..2026_v2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := rl.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := store.Load().Realm; got != "v2" {
		t.Fatalf("realm = %s, want v2", got)
	}
}
