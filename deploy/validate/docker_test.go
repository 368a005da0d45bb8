package validate

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// dockerfile is the parsed final stage of the repository's Dockerfile.
type dockerfile struct {
	args       map[string]string // ARG defaults before the first FROM
	froms      []string          // every FROM line, without "FROM "
	user       string
	expose     []string
	entrypoint []string
	cmd        []string
	runs       []string // RUN lines, continuations joined
}

func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	src := string(readRepo(t, "Dockerfile"))
	src = strings.ReplaceAll(src, "\\\n", " ")
	df := dockerfile{args: map[string]string{}}
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		jsonList := func() []string {
			var l []string
			if err := json.Unmarshal([]byte(rest), &l); err != nil {
				t.Fatalf("Dockerfile: %s must be in exec (JSON) form: %v", instr, err)
			}
			return l
		}
		switch strings.ToUpper(instr) {
		case "ARG":
			if len(df.froms) == 0 {
				k, v, _ := strings.Cut(rest, "=")
				df.args[k] = v
			}
		case "FROM":
			df.froms = append(df.froms, rest)
		case "USER":
			df.user = rest
		case "EXPOSE":
			df.expose = strings.Fields(rest)
		case "ENTRYPOINT":
			df.entrypoint = jsonList()
		case "CMD":
			df.cmd = jsonList()
		case "RUN":
			df.runs = append(df.runs, strings.Join(strings.Fields(rest), " "))
		}
	}
	return df
}

// policyPath is the --policy of a serve command line.
func policyPath(args []string) string {
	for i, a := range args {
		if a == "--policy" && i+1 < len(args) {
			return args[i+1]
		}
		if p, ok := strings.CutPrefix(a, "--policy="); ok {
			return p
		}
	}
	return ""
}

func TestDockerfile(t *testing.T) {
	df := parseDockerfile(t)
	if len(df.froms) != 2 {
		t.Fatalf("want a two-stage build, got FROM %q", df.froms)
	}
	gomod := string(readRepo(t, "go.mod"))
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(gomod)
	if !strings.Contains(df.froms[0], "golang:${GO_VERSION}") || !strings.HasPrefix(df.args["GO_VERSION"], goLine[1]) {
		t.Errorf("build stage %q (GO_VERSION=%s) does not build with Go %s of go.mod", df.froms[0], df.args["GO_VERSION"], goLine[1])
	}
	if want := "gcr.io/distroless/static-debian12:nonroot"; df.froms[1] != want {
		t.Errorf("final stage FROM %q, want %s", df.froms[1], want)
	}
	if df.user != "65532:65532" && df.user != "65532" {
		t.Errorf("USER %q, want 65532", df.user)
	}
	if strings.Join(df.expose, " ") != "9001 9090" {
		t.Errorf("EXPOSE %q, want 9001 9090", df.expose)
	}
	if strings.Join(df.entrypoint, " ") != "/extauthz" {
		t.Errorf("ENTRYPOINT %q, want [/extauthz]", df.entrypoint)
	}
	if len(df.cmd) == 0 || df.cmd[0] != "serve" || policyPath(df.cmd) != PolicyMountPath {
		t.Errorf("CMD %q, want serve --policy %s (where the manifests mount the policy)", df.cmd, PolicyMountPath)
	}
	build := ""
	for _, r := range df.runs {
		if strings.Contains(r, "go build") {
			build = r
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w", "-X main.buildVersion=${VERSION}", "./cmd/extauthz"} {
		if !strings.Contains(build, want) {
			t.Errorf("the go build RUN lacks %q: %s", want, build)
		}
	}
	// The same build, here: it compiles, and -X main.buildVersion lands.
	out, err := exec.Command(extauthz(t), "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), buildVersion) {
		t.Errorf("extauthz version = %q, %v; want it to report %q set by -ldflags -X main.buildVersion", out, err, buildVersion)
	}
}

// dockerignore implements the .dockerignore matching rules these patterns
// need: anchored at the context root, * within a segment, ** across
// segments, a pattern excluding a directory excludes what is under it, and
// ! re-includes (the last matching pattern wins).
type dockerignore []struct {
	re      *regexp.Regexp
	include bool
}

func parseDockerignore(src string) dockerignore {
	var di dockerignore
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		include := strings.HasPrefix(line, "!")
		p := filepath.ToSlash(filepath.Clean(strings.TrimPrefix(line, "!")))
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(p); i++ {
			switch {
			case strings.HasPrefix(p[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(p[i:], "**"):
				re.WriteString(".*")
				i++
			case p[i] == '*':
				re.WriteString("[^/]*")
			case p[i] == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(p[i : i+1]))
			}
		}
		re.WriteString("$")
		di = append(di, struct {
			re      *regexp.Regexp
			include bool
		}{regexp.MustCompile(re.String()), include})
	}
	return di
}

func (di dockerignore) excluded(rel string) bool {
	parts := strings.Split(rel, "/")
	for n := 1; n <= len(parts); n++ {
		prefix := strings.Join(parts[:n], "/")
		excl := false
		for _, p := range di {
			if p.re.MatchString(prefix) {
				excl = !p.include
			}
		}
		if excl {
			return true
		}
	}
	return false
}

func TestDockerignore(t *testing.T) {
	di := parseDockerignore(string(readRepo(t, ".dockerignore")))
	// Every file of the main module that the build compiles or embeds.
	cmd := exec.Command("go", "list", "-deps", "-f",
		`{{if .Module}}{{if .Module.Main}}{{range .GoFiles}}{{$.Dir}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$.Dir}}/{{.}}{{"\n"}}{{end}}{{end}}{{end}}`,
		"./cmd/extauthz")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	files := append(strings.Fields(string(out)), filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum"))
	if len(files) < 10 {
		t.Fatalf("go list found only %d files", len(files))
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		if di.excluded(filepath.ToSlash(rel)) {
			t.Errorf(".dockerignore excludes %s, which the image build needs", rel)
		}
	}
	for _, rel := range []string{".git/config", "examples/quickstart/keys/client.private.jwk.json", "test/jose/node_modules/x", "bin/extauthz"} {
		if !di.excluded(rel) {
			t.Errorf(".dockerignore lets %s into the build context", rel)
		}
	}
}

type composeFile struct {
	Services map[string]composeService `json:"services"`
}

type composeService struct {
	Image string `json:"image"`
	Build *struct {
		Context    string `json:"context"`
		Dockerfile string `json:"dockerfile"`
	} `json:"build"`
	Command     []string          `json:"command"`
	Environment map[string]string `json:"environment"`
	Volumes     []string          `json:"volumes"`
	Ports       []string          `json:"ports"`
	Networks    map[string]struct {
		Aliases []string `json:"aliases"`
	} `json:"networks"`
}

const composePath = "envoy/docker-compose.yaml"

func readCompose(t *testing.T) composeFile {
	t.Helper()
	var cf composeFile
	if err := yaml.Unmarshal(readRepo(t, composePath), &cf); err != nil {
		t.Fatalf("%s: %v", composePath, err)
	}
	return cf
}

// composePolicyDir lays out the files docker-compose mounts into the
// extauthz container's policy directory in a temporary directory, as the
// container sees them.
func composePolicyDir(t *testing.T) string {
	t.Helper()
	cf := readCompose(t)
	svc, ok := cf.Services["extauthz"]
	if !ok {
		t.Fatalf("%s: no extauthz service", composePath)
	}
	args := svc.Command
	if len(args) == 0 {
		args = parseDockerfile(t).cmd
	}
	pp := policyPath(args)
	if pp == "" {
		t.Fatalf("%s: extauthz runs %q, without --policy", composePath, args)
	}
	dir := t.TempDir()
	n := 0
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			continue
		}
		rel, err := filepath.Rel(pp, parts[1])
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		src := filepath.Join(repoPath("envoy"), parts[0])
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatalf("%s: volume %s: %v", composePath, v, err)
		}
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("%s: nothing is mounted in the extauthz policy directory %s", composePath, pp)
	}
	return dir
}

// envoyAPIMinor is the Envoy release line (v1.40) of the go-control-plane
// API these tests validate against, from this module's go.mod.
func envoyAPIMinor(t *testing.T) string {
	gomod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github.com/envoyproxy/go-control-plane/envoy (v\d+\.\d+)\.`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod: no github.com/envoyproxy/go-control-plane/envoy requirement")
	}
	return string(m[1])
}

func TestCompose(t *testing.T) {
	cf := readCompose(t)
	names := map[string]bool{}
	for name, svc := range cf.Services {
		names[name] = true
		for _, n := range svc.Networks {
			for _, a := range n.Aliases {
				names[a] = true
			}
		}
		if svc.Image != "" {
			tag := svc.Image[strings.LastIndex(svc.Image, "/")+1:]
			if !strings.Contains(tag, ":") || strings.HasSuffix(tag, ":latest") {
				t.Errorf("service %s: image %s has no pinned tag", name, svc.Image)
			}
		}
		if svc.Build != nil {
			if _, err := os.Stat(filepath.Join(repoPath("envoy"), svc.Build.Context, svc.Build.Dockerfile)); err != nil {
				t.Errorf("service %s: build: %v", name, err)
			}
		}
		for _, v := range svc.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if _, err := os.Stat(filepath.Join(repoPath("envoy"), src)); err != nil {
				t.Errorf("service %s: volume %s: %v", name, v, err)
			}
		}
	}
	envoy := cf.Services["envoy"]
	if want := "envoyproxy/envoy:" + envoyAPIMinor(t) + "."; !strings.HasPrefix(envoy.Image, want) {
		t.Errorf("envoy image %s: want %s* (the API the bootstrap is validated against)", envoy.Image, want)
	}
	// Envoy's upstreams are the compose services.
	rep, err := ValidateEnvoy(readRepo(t, "envoy/envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Bootstrap.GetStaticResources().GetClusters() {
		for _, e := range c.GetLoadAssignment().GetEndpoints() {
			for _, le := range e.GetLbEndpoints() {
				sa := le.GetEndpoint().GetAddress().GetSocketAddress()
				if !names[sa.GetAddress()] {
					t.Errorf("cluster %s: %s is not a compose service or alias", c.GetName(), sa.GetAddress())
				}
				if c.GetName() == "extauthz" && sa.GetPortValue() != GRPCPort {
					t.Errorf("cluster extauthz: port %d, want %d", sa.GetPortValue(), GRPCPort)
				}
			}
		}
	}
	// The policy the compose extauthz serves loads.
	if err := ValidatePolicy(extauthz(t), composePolicyDir(t)); err != nil {
		t.Error(err)
	}
}
