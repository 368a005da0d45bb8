package bench

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// startServers writes the policies and starts every server: the floor,
// extauthz (and its baseline build, and a second one on Redis), and the
// peers. A peer that does not start is a note of the report.
func (s *session) startServers(ctx context.Context) error {
	cfg, rep := s.cfg, s.rep
	s.serversStart = time.Now()
	s.onClose(func() {
		for _, p := range s.procs {
			p.Stop()
		}
	})
	if err := s.writePolicies(); err != nil {
		return err
	}
	floor, err := startNoop("noop", s.dir, cfg.Self)
	if err != nil {
		return err
	}
	s.floor = floor
	s.procs = append(s.procs, floor.Proc)
	// The floor's process also serves an empty unary method: the bare cost
	// of a gRPC call on this machine.
	s.bare = &Target{Name: "bare gRPC unary", Addr: floor.Addr, Proc: floor.Proc, Method: BareMethod}
	if s.ext, err = startExtauthz(ctx, "extauthz", s.dir, s.bin, s.policyFile, s.extra...); err != nil {
		return err
	}
	s.procs = append(s.procs, s.ext.Proc)
	if s.profiled {
		s.logf("extauthz profiles: go tool pprof http://%s/debug/pprof/profile?seconds=10", s.ext.HTTPAddr)
	}
	if s.baseBin != "" {
		bextra := []string{"--policy", s.dpopFile}
		if ExtauthzHasFlag(s.baseBin, "token-cache-size") {
			bextra = append(bextra, "--token-cache-size", fmt.Sprint(s.cacheSize))
		}
		if s.base, err = startExtauthz(ctx, "extauthz-baseline", s.dir, s.baseBin, s.policyFile, bextra...); err != nil {
			return err
		}
		s.procs = append(s.procs, s.base.Proc)
	}
	if cfg.wants(keyAssertRedis) {
		redisProc, redisAddr, err := startRedis(ctx, s.dir)
		if err != nil {
			s.note(fmt.Sprintf("No Redis scenario: %v", err))
			s.logf("redis: %v", err)
		} else {
			s.procs = append(s.procs, redisProc)
			s.extRedis, err = startExtauthz(ctx, "extauthz-redis", s.dir, s.bin, s.policyFile,
				append(slices.Clone(s.extra), "--replay-store", "redis://"+redisAddr+"/0")...)
			if err != nil {
				return err
			}
			s.procs = append(s.procs, s.extRedis.Proc)
		}
	}
	s.startPeers(ctx)
	rep.timings = append(rep.timings, timing{"servers started", time.Since(s.serversStart)})
	s.logf("servers ready in %s", time.Since(s.serversStart).Round(time.Millisecond))
	return nil
}

// writePolicies writes extauthz's policy files into the work directory,
// starts the introspection endpoint when its scenario runs, and sets the
// flags extauthz starts with.
func (s *session) writePolicies() error {
	cfg, rep := s.cfg, s.rep
	policy, err := render(cfg.Repo, "extauthz/policy.yaml", map[string]string{"JWKS_URL": s.jwksURL, "CLIENTS_URL": s.clientsURL})
	if err != nil {
		return err
	}
	if s.policyFile, err = writeFile(s.dir, "policy.yaml", policy); err != nil {
		return err
	}
	if s.dpopFile, err = writeFile(s.dir, "policy-dpop.yaml", DPoPPolicy); err != nil {
		return err
	}
	s.extra = []string{"--policy", s.dpopFile}
	// Only the extauthz under test gets the introspection rule: a baseline
	// build may predate introspection issuers.
	if cfg.wants(keyIntrospect) {
		if s.introspection, err = serveIntrospection(); err != nil {
			return err
		}
		s.onClose(s.introspection.stop)
		secret, err := writeFile(s.dir, "introspection-secret", introspectSecret)
		if err != nil {
			return err
		}
		f, err := writeFile(s.dir, "policy-introspection.yaml", introspectPolicy(s.introspection.url, secret))
		if err != nil {
			return err
		}
		s.extra = append(s.extra, "--policy", f)
	}
	// Profiles are served, not taken, until profileCached asks for one
	// after the rounds: serving them costs a Check nothing.
	if s.profiled = ExtauthzHasFlag(s.bin, "debug-pprof"); s.profiled {
		s.extra = append(s.extra, "--debug-pprof")
	}
	if cfg.wants(keyTxToken) && ExtauthzHasFlag(s.bin, "token-keys") {
		tx, err := txTokenFlags(s.dir)
		if err != nil {
			return err
		}
		s.extra = append(s.extra, tx...)
		s.txReqs = [][]byte{TxRequest(s.cachedTok, 0)}
	}
	s.cacheSize = cfg.Distinct / 2
	if ExtauthzHasFlag(s.bin, "token-cache-size") {
		s.extra = append(s.extra, "--token-cache-size", fmt.Sprint(s.cacheSize))
		rep.tokenCache = s.cacheSize
	} else {
		s.note("This extauthz has no --token-cache-size flag: the cached-bearer scenario verifies its token on every Check.")
	}
	return nil
}

// startPeers starts OPA-Envoy (with and without its io_jwt cache) and
// Heimdall, when they were built.
func (s *session) startPeers(ctx context.Context) {
	cfg := s.cfg
	if bin := s.peers["opa-envoy-plugin"]; bin != "" {
		for _, cached := range []bool{true, false} {
			name := "opa-envoy"
			if !cached {
				name = "opa-envoy-nocache"
			}
			tg, err := startOPA(ctx, name, s.dir, cfg.Repo, bin, s.jwks, cached)
			if err != nil {
				s.note(fmt.Sprintf("OPA-Envoy did not start, so this run has no OPA numbers: %v", firstLine(err)))
				s.logf("opa: %v", err)
				break
			}
			s.procs = append(s.procs, tg.Proc)
			if cached {
				s.opaCached = tg
			} else {
				s.opaDistinct = tg
			}
		}
	}
	if bin := s.peers["heimdall"]; bin != "" {
		heim, err := startHeimdall(ctx, s.dir, cfg.Repo, bin, s.jwksURL)
		if err != nil {
			s.note(fmt.Sprintf("Heimdall did not start, so this run has no Heimdall numbers: %v", firstLine(err)))
			s.logf("heimdall: %v", err)
		} else {
			s.heim = heim
			s.procs = append(s.procs, heim.Proc)
		}
	}
}
