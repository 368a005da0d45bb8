package validate

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// BuildExtauthz builds cmd/extauthz of the repository at root into dir,
// with the Dockerfile's -ldflags, and returns the binary's path. (Not
// -trimpath: that would miss the build cache `make build` fills.)
func BuildExtauthz(root, dir, version string) (string, error) {
	bin := filepath.Join(dir, "extauthz")
	cmd := exec.Command("go", "build",
		"-ldflags", "-s -w -X main.buildVersion="+version,
		"-o", bin, "./cmd/extauthz")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/extauthz: %w\n%s", err, out)
	}
	return bin, nil
}

// ValidatePolicy runs `extauthz validate` on paths: the policy loads as
// `serve` would load it (local key files read, nothing fetched).
func ValidatePolicy(bin string, paths ...string) error {
	cmd := exec.Command(bin, append([]string{"validate"}, paths...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("extauthz validate %s: %w\n%s", strings.Join(paths, " "), err, out.Bytes())
	}
	return nil
}

// PolicyFile is the part of a policy file these checks read.
type PolicyFile struct {
	Version string `json:"version"`
	Rules   []struct {
		Name    string            `json:"name"`
		Headers map[string]string `json:"headers"`
		// Metadata are the rule's dynamic_metadata members.
		Metadata map[string]string `json:"metadata"`
	} `json:"rules"`
	StripHeaders []string `json:"strip_headers"`
}

// ReadPolicyFile parses one policy file (not strictly: `extauthz validate`
// is the judge of the format) and checks it says version v1.
func ReadPolicyFile(name string, data []byte) (*PolicyFile, error) {
	var pf PolicyFile
	if err := yaml.Unmarshal(data, &pf); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if pf.Version != "v1" {
		return nil, fmt.Errorf("%s: version is %q, want v1", name, pf.Version)
	}
	return &pf, nil
}

// PolicyDir is what a policy directory (as extauthz loads it: every *.yaml
// and *.yml file in it) declares.
type PolicyDir struct {
	Rules map[string]bool
	// Metadata lists, by rule, the dynamic_metadata members the rule adds
	// to an allow.
	Metadata map[string][]string
	// ManagedHeaders are the headers extauthz sets or removes: every rule's
	// headers and strip_headers, lower case.
	ManagedHeaders []string
}

// ReadPolicyDir reads the policy files of dir.
func ReadPolicyDir(dir string) (*PolicyDir, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	pd := &PolicyDir{Rules: map[string]bool{}, Metadata: map[string][]string{}}
	managed := map[string]bool{}
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		pf, err := ReadPolicyFile(e.Name(), data)
		if err != nil {
			return nil, err
		}
		for _, r := range pf.Rules {
			pd.Rules[r.Name] = true
			for m := range r.Metadata {
				pd.Metadata[r.Name] = append(pd.Metadata[r.Name], m)
			}
			for h := range r.Headers {
				managed[strings.ToLower(h)] = true
			}
		}
		for _, h := range pf.StripHeaders {
			managed[strings.ToLower(h)] = true
		}
	}
	for h := range managed {
		pd.ManagedHeaders = append(pd.ManagedHeaders, h)
	}
	sort.Strings(pd.ManagedHeaders)
	return pd, nil
}
