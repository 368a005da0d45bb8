package policy

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/extauthz/extauthz/internal/keys"
)

// Reloader keeps a Store serving the policy at its paths. Reload re-reads
// the files; when they changed it compiles them and, only if that succeeds
// whole, publishes the new snapshot. A failed reload is logged and counted
// and the old snapshot keeps serving.
//
// Reload compares file contents, not modification times or inotify events,
// so it sees every way a file can change, including the atomic symlink swap
// with which Kubernetes updates a ConfigMap volume.
type Reloader struct {
	paths []string
	store *Store
	opts  Options
	log   *slog.Logger
	// prefetch warms the key sets of a new snapshot before it serves.
	prefetch     func(context.Context, []keys.Source)
	prefetchWait time.Duration
	m            *reloadMetrics
	// rejected is the hash of the files last rejected, so a broken policy
	// is reported once, not at every poll until someone fixes it.
	rejected string
}

// ReloaderConfig configures NewReloader.
type ReloaderConfig struct {
	Paths   []string
	Store   *Store
	Options Options
	Logger  *slog.Logger
	// Prefetch, if set, fetches a new snapshot's remote key sets before the
	// swap, waiting at most PrefetchWait.
	Prefetch     func(context.Context, []keys.Source)
	PrefetchWait time.Duration
	Registerer   prometheus.Registerer
}

type reloadMetrics struct {
	reloads *prometheus.CounterVec
	loaded  *prometheus.GaugeVec
}

// NewReloader returns a Reloader for the policy cfg.Store already serves.
func NewReloader(cfg ReloaderConfig) *Reloader {
	r := &Reloader{
		paths:        cfg.Paths,
		store:        cfg.Store,
		opts:         cfg.Options,
		log:          cfg.Logger,
		prefetch:     cfg.Prefetch,
		prefetchWait: cfg.PrefetchWait,
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer != nil {
		r.m = &reloadMetrics{
			reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "extauthz_policy_reload_total",
				Help: "Policy reloads that found changed files, by result (success or failure).",
			}, []string{"result"}),
			loaded: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "extauthz_policy_loaded_timestamp_seconds",
				Help: "When the serving policy was loaded; the hash label identifies its files.",
			}, []string{"hash"}),
		}
		cfg.Registerer.MustRegister(r.m.reloads, r.m.loaded)
		r.m.reloads.WithLabelValues("success")
		r.m.reloads.WithLabelValues("failure")
		r.published(cfg.Store.Load())
	}
	return r
}

func (r *Reloader) published(s *Snapshot) {
	if r.m == nil {
		return
	}
	r.m.loaded.Reset()
	r.m.loaded.WithLabelValues(s.Hash).Set(float64(s.LoadedAt.Unix()))
}

// ErrUnchanged is returned by Reload when the files are as last loaded, or
// as last rejected.
var ErrUnchanged = errors.New("policy: unchanged")

// Reload re-reads the policy. It returns ErrUnchanged when nothing changed,
// the load error when the new files are invalid, or nil after publishing.
func (r *Reloader) Reload(ctx context.Context) error {
	cur := r.store.Load()
	src, err := read(r.paths)
	if err == nil && (src.hash == cur.Hash || src.hash == r.rejected) {
		return ErrUnchanged
	}
	var snap *Snapshot
	if err == nil {
		snap, err = src.compile(r.opts)
	}
	if err != nil {
		if src != nil {
			r.rejected = src.hash
		}
		// Compiling recorded the new issuers' sources in the key plane;
		// put back the serving policy's, which keep serving.
		r.retain(cur)
		r.count("failure")
		r.log.Error("policy reload rejected; the previous policy keeps serving", "error", err, "serving_hash", cur.Hash)
		return err
	}
	if r.prefetch != nil {
		pctx, cancel := context.WithTimeout(ctx, r.prefetchWait)
		r.prefetch(pctx, snap.RemoteSources())
		cancel()
	}
	r.store.Swap(snap)
	// Issuers the new policy dropped stop refreshing now, rather than
	// until the key cache gets round to evicting them.
	r.retain(snap)
	r.count("success")
	r.published(snap)
	r.log.Info("policy reloaded", "hash", snap.Hash, "previous_hash", cur.Hash, "rules", len(snap.Rules), "issuers", len(snap.Issuers))
	return nil
}

// retain tells the key plane that snap's issuers' sources are the ones in
// use.
func (r *Reloader) retain(snap *Snapshot) {
	plane := r.opts.Keys
	if plane == nil || snap == nil {
		return
	}
	srcs := make([]keys.Source, 0, len(snap.Issuers))
	for _, is := range snap.Issuers {
		srcs = append(srcs, is.Keys)
	}
	plane.Retain(srcs)
}

func (r *Reloader) count(result string) {
	if r.m != nil {
		r.m.reloads.WithLabelValues(result).Inc()
	}
}

// Run calls Reload every interval and whenever trigger fires (SIGHUP), until
// ctx ends.
func (r *Reloader) Run(ctx context.Context, interval time.Duration, trigger <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-trigger:
		}
		_ = r.Reload(ctx)
	}
}
