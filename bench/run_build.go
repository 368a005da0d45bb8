package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// prepareBinaries builds extauthz, the baseline revision's when there is
// one, and the peers.
func (s *session) prepareBinaries(ctx context.Context) error {
	cfg, rep := s.cfg, s.rep
	s.bin = filepath.Join(s.dir, "extauthz")
	t := time.Now()
	if out, err := goCmd(ctx, cfg.Repo, "build", "-o", s.bin, "./cmd/extauthz").CombinedOutput(); err != nil {
		return fmt.Errorf("bench: go build ./cmd/extauthz: %v\n%s", err, out)
	}
	rep.timings = append(rep.timings, timing{"go build ./cmd/extauthz", time.Since(t)})
	s.logf("built extauthz in %s", time.Since(t).Round(time.Millisecond))
	if cfg.Baseline != "" {
		t = time.Now()
		var err error
		if s.baseBin, err = buildBaseline(ctx, cfg.Repo, s.dir, cfg.Baseline); err != nil {
			return err
		}
		rep.baseline = cfg.Baseline
		rep.timings = append(rep.timings, timing{"go build ./cmd/extauthz at " + cfg.Baseline, time.Since(t)})
		s.logf("built extauthz at %s in %s", cfg.Baseline, time.Since(t).Round(time.Millisecond))
	}
	s.peers = map[string]string{}
	if cfg.Peers && cfg.wantsPeers() {
		t = time.Now()
		var err error
		s.peers, err = buildPeers(ctx, cfg, s.logf)
		rep.timings = append(rep.timings, timing{"bench/build-peers.sh", time.Since(t)})
		if err != nil {
			s.note(fmt.Sprintf("The peers could not be built, so this run has none: %v", err))
			s.logf("peers: %v", err)
		}
	}
	rep.peerVersions = peerVersions(cfg.Repo)
	return nil
}

func goCmd(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	return cmd
}

// buildBaseline builds ./cmd/extauthz at rev, in a worktree of its own.
func buildBaseline(ctx context.Context, repo, dir, rev string) (string, error) {
	wt := filepath.Join(dir, "baseline-src")
	if out, err := exec.CommandContext(ctx, "git", "-C", repo, "worktree", "add", "--detach", wt, rev).CombinedOutput(); err != nil {
		return "", fmt.Errorf("bench: git worktree add %s: %v\n%s", rev, err, out)
	}
	defer func() {
		_ = exec.Command("git", "-C", repo, "worktree", "remove", "--force", wt).Run()
	}()
	bin := filepath.Join(dir, "extauthz-baseline")
	if out, err := goCmd(ctx, wt, "build", "-o", bin, "./cmd/extauthz").CombinedOutput(); err != nil {
		return "", fmt.Errorf("bench: go build ./cmd/extauthz at %s: %v\n%s", rev, err, out)
	}
	return bin, nil
}

// buildPeers runs bench/build-peers.sh (which skips what it has built
// before) and returns each binary by name.
func buildPeers(ctx context.Context, cfg Config, logf func(string, ...any)) (map[string]string, error) {
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(cfg.Repo, "bench", "build-peers.sh"))
	cmd.Dir = cfg.Repo
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = cfg.Log
	err := cmd.Run()
	peers := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		if name, path, ok := strings.Cut(sc.Text(), "="); ok {
			peers[name] = path
			logf("peer %s: %s", name, path)
		}
	}
	if err != nil {
		return peers, fmt.Errorf("bench/build-peers.sh: %w", err)
	}
	return peers, nil
}

// peerVersions reads the peers' versions from bench/peers/go.mod.
func peerVersions(repo string) map[string]string {
	b, err := os.ReadFile(filepath.Join(repo, "bench", "peers", "go.mod"))
	out := map[string]string{}
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			switch f[0] {
			case "github.com/open-policy-agent/opa-envoy-plugin":
				out[srvOPA] = f[1]
			case "github.com/dadrus/heimdall":
				out[srvHeimdall] = f[1]
			case "github.com/open-policy-agent/opa":
				out["OPA"] = f[1]
			}
		}
	}
	return out
}
