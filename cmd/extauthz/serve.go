package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/dpop"
	"github.com/extauthz/extauthz/internal/introspect"
	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/replay"
	"github.com/extauthz/extauthz/internal/token"
	"github.com/extauthz/extauthz/internal/tuning"
)

// serveConfig holds every serve flag.
type serveConfig struct {
	policies       stringList
	policyPoll     time.Duration
	grpcAddr       string
	httpAddr       string
	debugPprof     bool
	logFormat      string
	logLevel       string
	audit          bool
	logSample      float64
	logDecisions   string
	shutdownGrace  time.Duration
	prefetchWait   time.Duration
	maxBodyBytes   int
	maxTokenBytes  int
	tokenCache     int
	replayStore    string
	replayMax      int
	replayMaxNS    int
	replayMaxDPoP  int
	replayTimeout  time.Duration
	replayFailOpen bool
	nonceSecret    string
	nonceLifetime  time.Duration
	grpcTLS        grpcTLS
	streamWorkers  int
	gcHeadroomMiB  int
	keys           keys.Config
	tokens         tokenConfig
}

// checkDurations refuses a zero or negative duration flag. The key plane
// reads a zero in its Config as "use the default", so --jwks-max-stale 0
// would otherwise mean 24 hours; an operator who types 0 means something
// else, and is told so instead.
func (c *serveConfig) checkDurations() error {
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"policy-poll-interval", c.policyPoll},
		{"shutdown-grace", c.shutdownGrace},
		{"prefetch-wait", c.prefetchWait},
		{"replay-timeout", c.replayTimeout},
		{"dpop-nonce-lifetime", c.nonceLifetime},
		{"jwks-min-refresh", c.keys.MinRefresh},
		{"jwks-max-refresh", c.keys.MaxRefresh},
		{"jwks-refetch-cooldown", c.keys.RefetchCooldown},
		{"jwks-max-stale", c.keys.MaxStale},
		{"fetch-wait", c.keys.FetchWait},
		{"fetch-timeout", c.keys.FetchTimeout},
		{"token-publish-delay", c.tokens.publishDelay},
		{"token-refresh", c.tokens.refresh},
	} {
		if f.d <= 0 {
			return fmt.Errorf("--%s must be positive, got %s", f.name, f.d)
		}
	}
	return nil
}

func (c *serveConfig) flags(fs *flag.FlagSet) {
	fs.Var(&c.policies, "policy", "policy file or directory (repeatable)")
	fs.DurationVar(&c.policyPoll, "policy-poll-interval", 2*time.Second, "how often policy files are checked for changes (SIGHUP checks at once)")
	fs.StringVar(&c.grpcAddr, "grpc-addr", ":9001", "gRPC listen address: host:port or unix:///path")
	c.grpcTLS.flags(fs)
	fs.IntVar(&c.streamWorkers, "grpc-stream-workers", tuning.StreamWorkers, "gRPC goroutines kept to run Checks, whose stacks have already grown; a Check arriving while all are busy gets a new goroutine (0: a new goroutine for every Check)")
	fs.StringVar(&c.httpAddr, "http-addr", ":9090", "HTTP address of /healthz, /readyz, /metrics, /debug/keys and /.well-known/oauth-protected-resource")
	fs.BoolVar(&c.debugPprof, "debug-pprof", false, "serve Go's runtime profiles under /debug/pprof/ on --http-addr (off by default)")
	fs.IntVar(&c.gcHeadroomMiB, "gc-headroom-mib", tuning.DefaultGCHeadroom>>20, "MiB the Go heap may always grow by between two collections, when GOGC is not set (0: Go's default, GOGC=100)")
	fs.StringVar(&c.logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.Float64Var(&c.logSample, "decision-log-sample", 0.01, "with --log-decisions sampled, the fraction of allowed Checks written to the decision log (denies are always logged)")
	fs.StringVar(&c.logDecisions, "log-decisions", "sampled", "which Checks the decision log records: all, denies, or sampled (every deny and --decision-log-sample of the allows)")
	fs.BoolVar(&c.audit, "audit", false, "audit every rule: evaluate and record the decision, but always allow")
	fs.DurationVar(&c.shutdownGrace, "shutdown-grace", 15*time.Second, "how long in-flight Checks may take to finish after SIGTERM")
	fs.DurationVar(&c.prefetchWait, "prefetch-wait", 10*time.Second, "how long startup waits for remote key sets before serving")
	fs.IntVar(&c.maxBodyBytes, "max-body-bytes", check.DefaultMaxBodyBytes, "largest request body parsed for a client assertion; larger is a 400")
	fs.IntVar(&c.maxTokenBytes, "max-token-bytes", token.DefaultMaxTokenBytes, "largest token parsed; larger is rejected before decoding")
	fs.IntVar(&c.tokenCache, "token-cache-size", check.DefaultTokenCacheSize, "verified bearer tokens remembered (LRU); 0 turns the cache off")
	fs.StringVar(&c.replayStore, "replay-store", "memory", "jti replay store: memory, or a redis://, rediss:// URL (see docs)")
	fs.IntVar(&c.replayMax, "replay-max-entries", replay.DefaultMaxEntries, "memory replay store: most unexpired jti entries held")
	fs.IntVar(&c.replayMaxNS, "replay-max-entries-per-client", 0, "memory replay store: most entries one issuer or DPoP key may hold (0: a tenth of --replay-max-entries)")
	fs.IntVar(&c.replayMaxDPoP, "replay-max-entries-dpop", 0, "memory replay store: most entries all DPoP keys may hold together (0: half of --replay-max-entries)")
	fs.DurationVar(&c.replayTimeout, "replay-timeout", replay.DefaultRedisTimeout, "Redis replay store: timeout of one claim")
	fs.BoolVar(&c.replayFailOpen, "replay-fail-open", false, "allow client assertions without replay protection when the replay store is down (default: 503)")
	fs.StringVar(&c.nonceSecret, "dpop-nonce-secret-file", "", "file of at least 32 bytes keying DPoP nonces, shared by every replica (default: a random secret per process)")
	fs.DurationVar(&c.nonceLifetime, "dpop-nonce-lifetime", dpop.DefaultNonceLifetime, "how long one DPoP nonce window lasts; a nonce is accepted in its window and the next")
	k := &c.keys
	fs.IntVar(&k.CacheSize, "key-cache-size", keys.DefaultCacheSize, "issuers whose fetched key sets are cached (LRU)")
	fs.DurationVar(&k.MinRefresh, "jwks-min-refresh", keys.DefaultMinRefresh, "floor of the key refresh interval (Cache-Control max-age is clamped to it)")
	fs.DurationVar(&k.MaxRefresh, "jwks-max-refresh", keys.DefaultMaxRefresh, "ceiling of the key refresh interval")
	fs.DurationVar(&k.RefetchCooldown, "jwks-refetch-cooldown", keys.DefaultRefetchCooldown, "per issuer, the least time between a key fetch and a refetch for an unknown kid")
	fs.DurationVar(&k.MaxStale, "jwks-max-stale", keys.DefaultMaxStale, "how long a key set is served while its refreshes fail")
	fs.DurationVar(&k.FetchWait, "fetch-wait", keys.DefaultFetchWait, "longest a Check waits on a key fetch")
	fs.DurationVar(&k.FetchTimeout, "fetch-timeout", keys.DefaultFetchTimeout, "timeout of one key fetch")
	fs.Int64Var(&k.MaxBodyBytes, "fetch-max-bytes", keys.DefaultMaxBodyBytes, "largest key document fetched or key file read")
	c.tokens.flags(fs)
}

func serve(ctx context.Context, args []string, _, stderr io.Writer) int {
	var cfg serveConfig
	fs := newFlagSet("serve", stderr)
	cfg.flags(fs)
	if err := parseFlags(fs, args); err != nil {
		return flagExit(err)
	}
	if len(cfg.policies) == 0 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "extauthz serve: at least one --policy is required, and no arguments")
		return 2
	}
	if err := cfg.checkDurations(); err != nil {
		fmt.Fprintln(stderr, "extauthz serve:", err)
		return 2
	}
	if cfg.streamWorkers < 0 || cfg.streamWorkers > maxStreamWorkers {
		fmt.Fprintf(stderr, "extauthz serve: --grpc-stream-workers must be 0 to %d, got %d\n", maxStreamWorkers, cfg.streamWorkers)
		return 2
	}
	if cfg.gcHeadroomMiB < 0 || cfg.gcHeadroomMiB > 1<<20 {
		fmt.Fprintf(stderr, "extauthz serve: --gc-headroom-mib must be 0 to %d, got %d\n", 1<<20, cfg.gcHeadroomMiB)
		return 2
	}
	if err := cfg.grpcTLS.check(); err != nil {
		fmt.Fprintln(stderr, "extauthz serve:", err)
		return 2
	}
	if err := cfg.tokens.check(); err != nil {
		fmt.Fprintln(stderr, "extauthz serve:", err)
		return 2
	}
	sample, err := decisionLogSample(fs, cfg.logDecisions, cfg.logSample)
	if err != nil {
		fmt.Fprintln(stderr, "extauthz serve:", err)
		return 2
	}
	cfg.logSample = sample
	log, err := newLogger(stderr, cfg.logFormat, cfg.logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "extauthz serve:", err)
		return 2
	}
	setMemoryLimit(log)
	stopGC, tuned := tuning.StartGCHeadroom(uint64(cfg.gcHeadroomMiB) << 20)
	defer stopGC()
	if tuned {
		log.Info("garbage collector headroom set", "gc_headroom_bytes", cfg.gcHeadroomMiB<<20)
	}
	if err := runServer(ctx, cfg, log); err != nil {
		log.Error("extauthz: exiting", "error", err)
		return 1
	}
	return 0
}

// runServer wires every component, serves until ctx ends, then drains.
func runServer(ctx context.Context, cfg serveConfig, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "extauthz_build_info", Help: "Always 1; the version label says which build runs.",
	}, []string{"version"})
	buildInfo.WithLabelValues(version()).Set(1)
	reg.MustRegister(buildInfo)

	cfg.keys.Logger = log
	cfg.keys.Registerer = reg
	plane, err := keys.NewPlane(cfg.keys)
	if err != nil {
		return err
	}
	defer plane.Close()
	introspection, err := introspect.NewPlane(introspect.Config{Logger: log, Registerer: reg})
	if err != nil {
		return err
	}

	minter, err := cfg.tokens.open(log, nil)
	if err != nil {
		return err
	}
	snap, err := policy.Load(cfg.policies, policy.Options{Keys: plane, Introspection: introspection, Warn: policy.WarnLogger(log), NoTokenKeys: cfg.tokens.noKeys()})
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.prefetchWait)
	plane.Prefetch(pctx, snap.RemoteSources())
	cancel()
	store := policy.NewStore(snap)
	reloader := policy.NewReloader(policy.ReloaderConfig{
		Paths:        cfg.policies,
		Store:        store,
		Options:      policy.Options{Keys: plane, Introspection: introspection, Warn: policy.WarnLogger(log), NoTokenKeys: cfg.tokens.noKeys()},
		Logger:       log,
		Prefetch:     plane.Prefetch,
		PrefetchWait: cfg.prefetchWait,
		Registerer:   reg,
	})
	rs, closer, err := replay.Open(ctx, cfg.replayStore,
		replay.MemoryConfig{MaxEntries: cfg.replayMax, MaxEntriesPerNamespace: cfg.replayMaxNS, MaxEntriesPerGroup: cfg.replayMaxDPoP},
		replay.RedisConfig{Timeout: cfg.replayTimeout, Logger: log})
	if err != nil {
		return err
	}
	defer closer.Close()
	if r, ok := rs.(*replay.Redis); ok {
		if err := r.Ping(ctx); err != nil {
			log.Warn("replay store not reachable yet; client assertions get 503 until it is", "error", err)
		}
	}

	nonces, err := dpopNonces(cfg.nonceSecret, cfg.nonceLifetime)
	if err != nil {
		return err
	}
	srv := check.New(check.Config{
		Nonces:            nonces,
		Policy:            store,
		Replay:            rs,
		ReplayFailOpen:    cfg.replayFailOpen,
		Audit:             cfg.audit,
		MaxBodyBytes:      cfg.maxBodyBytes,
		TokenLimits:       token.Limits{MaxTokenBytes: cfg.maxTokenBytes},
		TokenCacheSize:    tokenCacheSize(cfg.tokenCache),
		Logger:            log,
		Metrics:           check.NewMetrics(reg),
		DecisionLogSample: cfg.logSample,
		Tokens:            minter,
	})

	gtls, err := openGRPCTLS(ctx, cfg.grpcTLS, log, reg)
	if err != nil {
		return err
	}
	defer gtls.Close()
	// Every goroutine serve starts is joined before it returns, ahead of
	// the Close calls of what they use.
	var bg sync.WaitGroup
	rctx, stopReload := context.WithCancel(ctx)
	defer func() { stopReload(); bg.Wait() }()
	// SIGHUP re-reads the policy and the gRPC listener's TLS files.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	trigger := make(chan struct{}, 1)
	tlsTrigger := make(chan struct{}, 1)
	bg.Go(func() {
		for {
			select {
			case <-rctx.Done():
				return
			case <-hup:
			}
			for _, c := range []chan struct{}{trigger, tlsTrigger} {
				select {
				case c <- struct{}{}:
				default:
				}
			}
		}
	})
	bg.Go(func() { reloader.Run(rctx, cfg.policyPoll, trigger) })
	bg.Go(func() { gtls.run(rctx, cfg.grpcTLS.reloadInterval, tlsTrigger) })
	glis, err := listen(cfg.grpcAddr)
	if err != nil {
		return err
	}
	hlis, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		glis.Close()
		return fmt.Errorf("extauthz: http listener: %w", err)
	}
	traceOpts, stopTracing, err := tracingOptions(ctx)
	if err != nil {
		glis.Close()
		hlis.Close()
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = stopTracing(sctx)
	}()
	gs := grpc.NewServer(append(append(traceOpts, gtls.serverOptions()...),
		check.ServerCodec(), // invalid UTF-8 is a deny, not a gRPC error
		grpc.NumStreamWorkers(uint32(cfg.streamWorkers)),
		grpc.MaxRecvMsgSize(maxCheckRequestBytes),
		// Envoy keeps long-lived HTTP/2 connections and pings them; allow
		// its keepalives, and recycle connections now and then so load
		// spreads over new replicas.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: 30 * time.Minute, MaxConnectionAgeGrace: time.Minute, Time: 2 * time.Minute, Timeout: 20 * time.Second}),
	)...)
	srv.Register(gs)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)

	var ready atomic.Bool
	admin := adminMux(reg, plane, store, &ready)
	if cfg.debugPprof {
		admin.Handle("/debug/pprof/", debugPprofHandler())
	}
	serveTokens(rctx, &bg, minter, cfg.tokens.refresh, admin)
	httpSrv := &http.Server{
		Handler:           admin,
		ReadHeaderTimeout: 5 * time.Second,
	}
	gerr := make(chan error, 1)
	bg.Go(func() { gerr <- gs.Serve(glis) })
	bg.Go(func() {
		if err := httpSrv.Serve(hlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("extauthz: http server", "error", err)
		}
	})
	ready.Store(true)
	log.Info("serving", "grpc_addr", addrString(glis), "grpc_tls", gtls.mode, "http_addr", hlis.Addr().String(),
		"policy_hash", snap.Hash, "rules", len(snap.Rules), "issuers", len(snap.Issuers), "version", version())

	select {
	case <-ctx.Done():
	case err := <-gerr:
		_ = httpSrv.Close()
		return fmt.Errorf("extauthz: grpc server: %w", err)
	}
	// Drain: report NOT_SERVING first so Envoy's health checks and
	// Kubernetes' readiness move traffic away, then let in-flight Checks
	// finish within the grace period.
	log.Info("shutting down", "grace", cfg.shutdownGrace)
	ready.Store(false)
	hs.Shutdown()
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	timer := time.NewTimer(cfg.shutdownGrace)
	select {
	case <-stopped:
		timer.Stop()
	case <-timer.C:
		log.Warn("shutdown grace elapsed; cancelling remaining Checks")
		gs.Stop()
		<-stopped
	}
	hctx, hcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer hcancel()
	_ = httpSrv.Shutdown(hctx)
	log.Info("stopped")
	return nil
}

// decisionLogSample is check.Config's DecisionLogSample for --log-decisions
// mode: every allow (1) for all, none (0) for denies, and sample, from
// --decision-log-sample, for sampled. A --decision-log-sample given with
// all or denies contradicts the mode, so it is refused rather than ignored.
func decisionLogSample(fs *flag.FlagSet, mode string, sample float64) (float64, error) {
	sampleSet := false
	fs.Visit(func(f *flag.Flag) { sampleSet = sampleSet || f.Name == "decision-log-sample" })
	switch mode {
	case "sampled":
		return sample, nil
	case "all", "denies":
		if sampleSet {
			return 0, fmt.Errorf("--decision-log-sample applies only to --log-decisions sampled, not %s", mode)
		}
		if mode == "all" {
			return 1, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("--log-decisions: want all, denies or sampled, got %q", mode)
}

// dpopNonces builds the DPoP nonce issuer from the secret file, or from a
// random secret when there is none.
func dpopNonces(secretFile string, lifetime time.Duration) (*dpop.Nonces, error) {
	var secret []byte
	if secretFile != "" {
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return nil, fmt.Errorf("extauthz: --dpop-nonce-secret-file: %w", err)
		}
		if secret = bytes.TrimRight(b, "\r\n"); len(secret) == 0 {
			return nil, fmt.Errorf("extauthz: --dpop-nonce-secret-file %s is empty", secretFile)
		}
	}
	n, err := dpop.NewNonces(secret, lifetime, nil)
	if err != nil {
		return nil, fmt.Errorf("extauthz: --dpop-nonce-secret-file: %w", err)
	}
	return n, nil
}

// tokenCacheSize maps the flag (0 = off) onto check.Config (0 = default).
func tokenCacheSize(flag int) int {
	if flag <= 0 {
		return -1
	}
	return flag
}

// maxStreamWorkers bounds --grpc-stream-workers.
const maxStreamWorkers = 1 << 14

// maxCheckRequestBytes bounds one CheckRequest: Envoy's buffered body
// (max_request_bytes) plus headers fit well within it.
const maxCheckRequestBytes = 4 << 20

// listen opens the gRPC listener: host:port, or unix:///path.
func listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("extauthz: grpc listener: %w", err)
		}
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("extauthz: grpc listener: %w", err)
		}
		return l, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("extauthz: grpc listener: %w", err)
	}
	return l, nil
}

func addrString(l net.Listener) string {
	if l.Addr().Network() == "unix" {
		return "unix://" + l.Addr().String()
	}
	return l.Addr().String()
}

// adminMux serves liveness, readiness, metrics and the key plane's debug
// view on the HTTP address.
func adminMux(reg *prometheus.Registry, plane *keys.Plane, store *policy.Store, ready *atomic.Bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		snap := store.Load()
		w.Header().Set("Content-Type", "application/json")
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"ready":            ready.Load(),
			"policy_hash":      snap.Hash,
			"policy_loaded_at": snap.LoadedAt.UTC().Format(time.RFC3339),
			"policy_files":     snap.Files,
		})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.Handle("GET /debug/keys", plane.DebugHandler())
	prm := resourceMetadataHandler(store)
	mux.Handle("GET "+policy.MetadataPrefix, prm)
	mux.Handle("GET "+policy.MetadataPrefix+"/", prm)
	return mux
}
