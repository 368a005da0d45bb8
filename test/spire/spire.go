// Package spire runs a real SPIRE deployment on loopback for tests: a
// spire-server (join-token node attestation, sqlite datastore, in-memory
// keys), a spire-agent (unix workload attestor) and SPIRE's OIDC discovery
// provider, with a registration entry for the test process' own uid, so the
// test can fetch real JWT-SVIDs from the agent's Workload API.
//
// The binaries are built once by test/spire/build.sh into
// ${EXTAUTHZ_TOOLS:-$HOME/.cache/extauthz-tools}/spire-<Version>/, from a
// separate tools module so that SPIRE never enters the project's go.mod.
// Without them, Start skips the test, or fails it when CI=true.
package spire

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// Version is the SPIRE release the tests run against.
const Version = "v1.13.3"

// TrustDomain is the deployment's trust domain.
const TrustDomain = "example.org"

// WorkloadID is the SPIFFE ID the test process is registered under.
const WorkloadID = "spiffe://example.org/ns/applications/sa/workload-client"

// startTimeout bounds each wait for a SPIRE component to come up; they take
// a second or two on an idle machine.
const startTimeout = 60 * time.Second

// BinDir is where build.sh puts the binaries.
func BinDir() string {
	tools := os.Getenv("EXTAUTHZ_TOOLS")
	if tools == "" {
		home, _ := os.UserHomeDir()
		tools = filepath.Join(home, ".cache", "extauthz-tools")
	}
	return filepath.Join(tools, "spire-"+Version)
}

// Require returns BinDir if all three binaries are there. Otherwise it skips
// t, or fails it under CI, where `make test` builds them first.
func Require(t testing.TB) string {
	t.Helper()
	dir := BinDir()
	for _, b := range []string{"spire-server", "spire-agent", "oidc-discovery-provider"} {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.Mode()&0o111 == 0 {
			msg := fmt.Sprintf("SPIRE %s binaries not built (%s missing): run test/spire/build.sh (a cold build takes ~15 min)", Version, filepath.Join(dir, b))
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	return dir
}

// SPIRE is a running deployment.
type SPIRE struct {
	// Dir holds configs, data, sockets and logs. It is short, because unix
	// socket paths are limited to about 108 bytes.
	Dir          string
	ServerSocket string
	AgentSocket  string
	// OIDCAddr is the discovery provider's host:port on loopback.
	OIDCAddr string
	// Token is the agent's join token.
	Token string

	bin        string
	serverPort int
	mu         sync.Mutex
	procs      map[string]*proc
}

// proc is one running SPIRE process.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// Start runs server, agent and discovery provider, registers the test
// process' uid as WorkloadID, and returns once the agent issues JWT-SVIDs
// and the provider serves keys. Everything stops when t ends.
func Start(t testing.TB) *SPIRE {
	t.Helper()
	bin := Require(t)
	dir, err := os.MkdirTemp("", "spire")
	if err != nil {
		t.Fatal(err)
	}
	s := &SPIRE{
		Dir:          dir,
		ServerSocket: filepath.Join(dir, "server.sock"),
		AgentSocket:  filepath.Join(dir, "agent.sock"),
		bin:          bin,
		serverPort:   freePort(t),
		procs:        map[string]*proc{},
	}
	t.Cleanup(func() {
		s.stopAll()
		if t.Failed() {
			s.dumpLogs(t)
		}
		os.RemoveAll(dir)
	})
	start := time.Now()

	s.write(t, "server.conf", fmt.Sprintf(`server {
    bind_address = "127.0.0.1"
    bind_port = "%d"
    socket_path = %q
    trust_domain = %q
    data_dir = %q
    log_level = "INFO"
    default_jwt_svid_ttl = "10m"
}
plugins {
    DataStore "sql" {
        plugin_data {
            database_type = "sqlite3"
            connection_string = %q
        }
    }
    NodeAttestor "join_token" {
        plugin_data {}
    }
    KeyManager "memory" {
        plugin_data {}
    }
}
`, s.serverPort, s.ServerSocket, TrustDomain, filepath.Join(dir, "server-data"), filepath.Join(dir, "datastore.sqlite3")))
	s.start(t, "spire-server", "run", "-config", filepath.Join(dir, "server.conf"))
	s.waitServer(t)

	out := s.ServerCLI(t, "token", "generate", "-ttl", "600")
	m := regexp.MustCompile(`Token: ([0-9a-f-]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("spire-server token generate printed %q", out)
	}
	s.Token = m[1]
	// Registered before the agent starts, so its first sync brings it.
	s.ServerCLI(t, "entry", "create",
		"-parentID", "spiffe://"+TrustDomain+"/spire/agent/join_token/"+s.Token,
		"-spiffeID", WorkloadID,
		"-selector", "unix:uid:"+strconv.Itoa(os.Getuid()))

	s.write(t, "agent.conf", fmt.Sprintf(`agent {
    data_dir = %q
    log_level = "INFO"
    server_address = "127.0.0.1"
    server_port = "%d"
    socket_path = %q
    trust_domain = %q
    insecure_bootstrap = true
    join_token = %q
    # Sync with the server every second instead of every 5s, so bundle
    # changes and tainted keys reach the agent quickly.
    experimental {
        sync_interval = "1s"
    }
}
plugins {
    NodeAttestor "join_token" {
        plugin_data {}
    }
    # On disk, so a restarted agent keeps its SVID: the join token it
    # attested with is single-use.
    KeyManager "disk" {
        plugin_data {
            directory = %q
        }
    }
    WorkloadAttestor "unix" {
        plugin_data {}
    }
}
`, filepath.Join(dir, "agent-data"), s.serverPort, s.AgentSocket, TrustDomain, s.Token, filepath.Join(dir, "agent-data")))
	s.StartAgent(t)

	s.OIDCAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.write(t, "oidc.conf", fmt.Sprintf(`log_level = "info"
domains = ["localhost"]
insecure_addr = %q
allow_insecure_scheme = true
server_api {
    address = "unix://%s"
    poll_interval = "1s"
}
`, s.OIDCAddr, s.ServerSocket))
	s.start(t, "oidc-discovery-provider", "-config", filepath.Join(dir, "oidc.conf"))
	s.waitKeys(t)
	t.Logf("SPIRE %s up in %s (server :%d, agent %s, OIDC %s)", Version, time.Since(start).Round(time.Millisecond), s.serverPort, s.AgentSocket, s.OIDCAddr)
	return s
}

// WorkloadAPIAddr is the agent's Workload API address.
func (s *SPIRE) WorkloadAPIAddr() string { return "unix://" + s.AgentSocket }

// KeysURL is the discovery provider's JWKS, for jwks_uri. It is named by
// "localhost", one of the provider's domains.
func (s *SPIRE) KeysURL() string {
	_, port, _ := net.SplitHostPort(s.OIDCAddr)
	return "http://localhost:" + port + "/keys"
}

// StartAgent starts the agent (again) and waits until it issues the test
// process' JWT-SVID.
func (s *SPIRE) StartAgent(t testing.TB) {
	t.Helper()
	s.start(t, "spire-agent", "run", "-config", filepath.Join(s.Dir, "agent.conf"))
	s.FetchJWTSVID(t, "spire-harness-ready")
}

// StopAgent stops the agent, as an agent restart or crash does.
func (s *SPIRE) StopAgent(t testing.TB) {
	t.Helper()
	s.stop("spire-agent")
}

// FetchJWTSVID fetches a JWT-SVID for aud from the agent, waiting for the
// agent to be ready to issue it.
func (s *SPIRE) FetchJWTSVID(t testing.TB, aud string) string {
	t.Helper()
	var last error
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		svid, err := workloadapi.FetchJWTSVID(ctx, jwtsvid.Params{Audience: aud}, workloadapi.WithAddr(s.WorkloadAPIAddr()))
		cancel()
		if err == nil {
			if svid.ID.String() != WorkloadID {
				t.Fatalf("agent issued %s, want %s", svid.ID, WorkloadID)
			}
			return svid.Marshal()
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no JWT-SVID from the agent within %s: %v", startTimeout, last)
	return ""
}

// AgentHasJWTKey reports whether the agent's Workload API bundle of the
// trust domain has the JWT key kid.
func (s *SPIRE) AgentHasJWTKey(kid string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	set, err := workloadapi.FetchJWTBundles(ctx, workloadapi.WithAddr(s.WorkloadAPIAddr()))
	if err != nil {
		return false
	}
	b, err := set.GetJWTBundleForTrustDomain(spiffeid.RequireTrustDomainFromString(TrustDomain))
	return err == nil && b.HasJWTAuthority(kid)
}

// Bundle is the trust domain's bundle as `spire-server bundle show -format
// spiffe` prints it: what spiffe-helper or an operator writes to a file.
func (s *SPIRE) Bundle(t testing.TB) []byte {
	t.Helper()
	return []byte(s.ServerCLI(t, "bundle", "show", "-format", "spiffe"))
}

// RotateJWTKey rotates the server's JWT signing key the way an operator
// does: prepare a new authority, wait until the agent (and so every
// verifier) has its key, activate it, and taint the old one so the agent
// drops the JWT-SVIDs it signed. It returns the old and new key ids once
// the agent issues SVIDs signed by the new key. ready, when not nil, is
// called after the new key reached the agent and before activation, so a
// caller can wait for its own verifiers too.
func (s *SPIRE) RotateJWTKey(t testing.TB, ready func(newKID string)) (oldKID, newKID string) {
	t.Helper()
	oldKID = s.activeJWTAuthority(t)
	out := s.ServerCLI(t, "localauthority", "jwt", "prepare")
	newKID = authorityID(t, out)
	waitFor(t, "the agent's bundle to carry the prepared JWT key", func() bool { return s.AgentHasJWTKey(newKID) })
	if ready != nil {
		ready(newKID)
	}
	s.ServerCLI(t, "localauthority", "jwt", "activate", "-authorityID", newKID)
	s.ServerCLI(t, "localauthority", "jwt", "taint", "-authorityID", oldKID)
	waitFor(t, "a JWT-SVID signed by the new key", func() bool {
		return KeyID(t, s.FetchJWTSVID(t, "spire-harness-rotation")) == newKID
	})
	return oldKID, newKID
}

func (s *SPIRE) activeJWTAuthority(t testing.TB) string {
	t.Helper()
	out := s.ServerCLI(t, "localauthority", "jwt", "show")
	_, active, ok := strings.Cut(out, "Active JWT authority:")
	if !ok {
		t.Fatalf("localauthority jwt show printed no active authority:\n%s", out)
	}
	return authorityID(t, active)
}

func authorityID(t testing.TB, out string) string {
	t.Helper()
	m := regexp.MustCompile(`Authority ID: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no authority ID in:\n%s", out)
	}
	return m[1]
}

// KeyID is the kid in a JWT's header.
func KeyID(t testing.TB, token string) string {
	t.Helper()
	h, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &hdr); err != nil {
		t.Fatal(err)
	}
	return hdr.Kid
}

// ServerCLI runs a spire-server CLI command against the server's socket and
// returns its output, failing t if it fails.
func (s *SPIRE) ServerCLI(t testing.TB, args ...string) string {
	t.Helper()
	out, err := s.serverCLI(args...)
	if err != nil {
		t.Fatalf("spire-server %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (s *SPIRE) serverCLI(args ...string) (string, error) {
	// -socketPath goes after the subcommand's words, before its flags.
	i := 0
	for i < len(args) && !strings.HasPrefix(args[i], "-") {
		i++
	}
	full := append(append(append([]string{}, args[:i]...), "-socketPath", s.ServerSocket), args[i:]...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "spire-server"), full...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (s *SPIRE) waitServer(t testing.TB) {
	t.Helper()
	waitFor(t, "spire-server healthcheck", func() bool {
		_, err := s.serverCLI("healthcheck", "-shallow")
		return err == nil
	})
}

func (s *SPIRE) waitKeys(t testing.TB) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	waitFor(t, "the discovery provider's /keys", func() bool {
		resp, err := client.Get(s.KeysURL())
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var jwks struct {
			Keys []json.RawMessage `json:"keys"`
		}
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && json.Unmarshal(body, &jwks) == nil && len(jwks.Keys) > 0
	})
}

func (s *SPIRE) write(t testing.TB, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.Dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// start runs a SPIRE binary, logging to Dir/<name>.log.
func (s *SPIRE) start(t testing.TB, name string, args ...string) {
	t.Helper()
	s.stop(name)
	logPath := filepath.Join(s.Dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs[name] = p
	s.mu.Unlock()
}

// stop ends a process: SIGTERM, then SIGKILL after five seconds.
func (s *SPIRE) stop(name string) {
	s.mu.Lock()
	p := s.procs[name]
	delete(s.procs, name)
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (s *SPIRE) stopAll() {
	// The provider and agent first: they depend on the server.
	for _, name := range []string{"oidc-discovery-provider", "spire-agent", "spire-server"} {
		s.stop(name)
	}
}

func (s *SPIRE) dumpLogs(t testing.TB) {
	for _, name := range []string{"spire-server", "spire-agent", "oidc-discovery-provider"} {
		b, err := os.ReadFile(filepath.Join(s.Dir, name+".log"))
		if err != nil {
			continue
		}
		if len(b) > 8000 {
			b = b[len(b)-8000:]
		}
		t.Logf("--- %s.log (tail) ---\n%s", name, b)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond every 100ms until it holds, failing t after
// startTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", startTimeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
