package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/extauthz/extauthz/internal/replay"
)

// startTimeout bounds how long any server may take to become ready.
const startTimeout = 60 * time.Second

// render reads a template under bench/ and replaces each {{KEY}}.
func render(repo, name string, vars map[string]string) (string, error) {
	b, err := os.ReadFile(filepath.Join(repo, "bench", name))
	if err != nil {
		return "", err
	}
	s := string(b)
	for k, v := range vars {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	return s, nil
}

func writeFile(dir, name, content string) (string, error) {
	p := filepath.Join(dir, name)
	return p, os.WriteFile(p, []byte(content), 0o600)
}

// startNoop starts this program in its no-op server mode, logging to
// dir/name.log.
func startNoop(name, dir, self string) (*Target, error) {
	var addr string
	p, err := Start(name, dir, self, []string{"noop", "-addr", "127.0.0.1:0"}, nil, func(line string) bool {
		a, ok := strings.CutPrefix(line, "serving ")
		if ok {
			addr = a
		}
		return ok
	})
	if err != nil {
		return nil, err
	}
	if err := p.WaitLine(startTimeout); err != nil {
		p.Stop()
		return nil, err
	}
	return &Target{Name: "floor (no-op)", Addr: addr, Proc: p}, nil
}

// ExtauthzHasFlag reports whether `extauthz serve` knows the flag.
func ExtauthzHasFlag(bin, flag string) bool {
	out, _ := exec.Command(bin, "serve", "-h").CombinedOutput()
	// A flag with a value is listed as "-name value", a boolean one alone
	// on its line.
	return strings.Contains(string(out), "-"+flag+" ") || strings.Contains(string(out), "-"+flag+"\n")
}

// startExtauthz starts the binary on the policy, with extra flags; it is
// ready when it logs "serving" and /readyz answers.
func startExtauthz(ctx context.Context, name, dir, bin, policyFile string, extra ...string) (*Target, error) {
	var grpcAddr, httpAddr string
	args := append([]string{"serve", "--policy", policyFile,
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		// Info is the production default: allowed Checks log nothing at it.
		"--log-format", "json", "--log-level", "info",
	}, extra...)
	// The assertion scenarios send every assertion from one client, far
	// more than one client's default share of the memory replay store.
	if ExtauthzHasFlag(bin, "replay-max-entries-per-client") {
		args = append(args, "--replay-max-entries-per-client", strconv.Itoa(replay.DefaultMaxEntries))
	}
	p, err := Start(name, dir, bin, args, nil, func(line string) bool {
		var m struct {
			Msg      string `json:"msg"`
			GRPCAddr string `json:"grpc_addr"`
			HTTPAddr string `json:"http_addr"`
		}
		if json.Unmarshal([]byte(line), &m) != nil || m.Msg != "serving" {
			return false
		}
		grpcAddr, httpAddr = m.GRPCAddr, m.HTTPAddr
		return true
	})
	if err != nil {
		return nil, err
	}
	if err := p.WaitLine(startTimeout); err != nil {
		p.Stop()
		return nil, err
	}
	if err := waitHTTP(ctx, p, "http://"+httpAddr+"/readyz", startTimeout); err != nil {
		p.Stop()
		return nil, err
	}
	return &Target{Name: name, Addr: grpcAddr, HTTPAddr: httpAddr, Proc: p}, nil
}

// startRedis starts redis-server on a free loopback port, without
// persistence.
func startRedis(ctx context.Context, dir string) (*Process, string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", fmt.Errorf("bench: redis-server not found (make deps-apt installs it): %w", err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, "", err
	}
	p, err := Start("redis", dir, bin, []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--protected-mode", "yes", "--dir", dir,
	}, nil, nil)
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	deadline := time.Now().Add(startTimeout)
	for rc.Ping(ctx).Err() != nil {
		if p.Exited() || time.Now().After(deadline) {
			p.Stop()
			return nil, "", fmt.Errorf("bench: redis-server did not start; log: %s\n%s", p.log, p.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p, addr, nil
}

// startOPA starts opa-envoy-plugin with the bench's Rego policy and a data
// document holding the JWKS; cache says whether io.jwt results are cached.
func startOPA(ctx context.Context, name, dir, repo, bin string, jwks []byte, cache bool) (*Target, error) {
	grpcPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	grpcAddr := fmt.Sprintf("127.0.0.1:%d", grpcPort)
	cfg, err := render(repo, "opa/config.yaml", map[string]string{
		"GRPC_ADDR":          grpcAddr,
		"JWT_CACHE_DISABLED": strconv.FormatBool(!cache),
	})
	if err != nil {
		return nil, err
	}
	sub := filepath.Join(dir, name)
	if err := os.MkdirAll(sub, 0o700); err != nil {
		return nil, err
	}
	cfgFile, err := writeFile(sub, "config.yaml", cfg)
	if err != nil {
		return nil, err
	}
	data, _ := json.Marshal(map[string]any{"bench": map[string]any{
		"jwks": string(jwks), "issuer": Issuer, "audience": Audience, "host": APIHost, "scope": Scope,
	}})
	dataFile, err := writeFile(sub, "data.json", string(data))
	if err != nil {
		return nil, err
	}
	p, err := Start(name, dir, bin, []string{
		"run", "--server",
		"--addr", fmt.Sprintf("127.0.0.1:%d", httpPort),
		// No version check against GitHub: the bench talks only to loopback.
		"--skip-version-check",
		"--log-level", "error",
		"--config-file", cfgFile,
		filepath.Join(repo, "bench", "opa", "policy.rego"), dataFile,
	}, nil, nil)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, p, fmt.Sprintf("http://127.0.0.1:%d/health?plugins", httpPort), startTimeout); err != nil {
		p.Stop()
		return nil, err
	}
	return &Target{Name: name, Addr: grpcAddr, Proc: p}, nil
}

// startHeimdall starts `heimdall serve decision --envoy-grpc` with the
// bench's configuration and rule.
func startHeimdall(ctx context.Context, dir, repo, bin, jwksURL string) (*Target, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	mport, err := FreePort()
	if err != nil {
		return nil, err
	}
	sub := filepath.Join(dir, "heimdall")
	if err := os.MkdirAll(sub, 0o700); err != nil {
		return nil, err
	}
	rules, err := render(repo, "heimdall/rules.yaml", nil)
	if err != nil {
		return nil, err
	}
	rulesFile, err := writeFile(sub, "rules.yaml", rules)
	if err != nil {
		return nil, err
	}
	cfg, err := render(repo, "heimdall/config.yaml", map[string]string{
		"PORT":            strconv.Itoa(port),
		"MANAGEMENT_PORT": strconv.Itoa(mport),
		"JWKS_URL":        jwksURL,
		"RULES_FILE":      rulesFile,
	})
	if err != nil {
		return nil, err
	}
	cfgFile, err := writeFile(sub, "config.yaml", cfg)
	if err != nil {
		return nil, err
	}
	p, err := Start("heimdall", dir, bin, []string{
		"serve", "decision", "--envoy-grpc", "-c", cfgFile,
		// Loopback HTTP: the bench serves neither TLS nor the JWKS over it.
		"--insecure-skip-all-tls-enforcement",
	}, []string{"OTEL_SDK_DISABLED=true", "OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none"}, nil)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, p, fmt.Sprintf("http://127.0.0.1:%d/.well-known/health", mport), startTimeout); err != nil {
		p.Stop()
		return nil, err
	}
	return &Target{Name: "heimdall", Addr: fmt.Sprintf("127.0.0.1:%d", port), Proc: p}, nil
}
