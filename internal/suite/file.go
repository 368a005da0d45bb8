package suite

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The test file format; docs/policy.md ("Testing policies") is its reference.
type testFile struct {
	Policy pathList          `yaml:"policy"`
	Keys   map[string]string `yaml:"keys"`
	// IssuerKeys names, by issuer, the keys of Keys whose public halves
	// the issuer verifies with instead of its own source, so an issuer
	// whose keys are fetched (jwks_uri, discovery, spiffe) is tested
	// without the network and the policy unchanged.
	IssuerKeys map[string]pathList `yaml:"issuer_keys"`
	Now        string              `yaml:"now"`
	Audit      bool                `yaml:"audit"`
	Tests      []testCase          `yaml:"tests"`
}

type testCase struct {
	Name    string      `yaml:"name"`
	Request testRequest `yaml:"request"`
	Token   *testToken  `yaml:"token"`
	// Grant is an RFC 7523 §2.1 authorization grant, sent as the
	// assertion parameter (testgrant.go).
	Grant  *testToken `yaml:"grant"`
	DPoP   *testProof `yaml:"dpop"`
	Expect testExpect `yaml:"expect"`
}

type testRequest struct {
	Method            string            `yaml:"method"`
	Host              string            `yaml:"host"`
	Path              string            `yaml:"path"`
	Headers           map[string]string `yaml:"headers"`
	ContextExtensions map[string]string `yaml:"context_extensions"`
	Form              map[string]string `yaml:"form"`
	Body              *string           `yaml:"body"`
	EncodeRawHeaders  bool              `yaml:"encode_raw_headers"`
	PackAsBytes       bool              `yaml:"pack_as_bytes"`
	// Scheme is :scheme, "https" unless given.
	Scheme string `yaml:"scheme"`
	// PeerCertificate is a PEM file, sent as Envoy's
	// attributes.source.certificate (include_peer_certificate: true).
	PeerCertificate string `yaml:"peer_certificate"`
}

type testToken struct {
	As      string         `yaml:"as"`
	Key     string         `yaml:"key"`
	Alg     string         `yaml:"alg"`
	Header  map[string]any `yaml:"header"`
	Claims  map[string]any `yaml:"claims"`
	Payload *string        `yaml:"payload"`
	Literal string         `yaml:"literal"`
}

// testProof is a DPoP proof (RFC 9449) for the test's request, sent in the
// DPoP header. The runner fills in a correct proof; header and claims
// override its members (null deletes one).
type testProof struct {
	Key    string         `yaml:"key"`
	Alg    string         `yaml:"alg"`
	Header map[string]any `yaml:"header"`
	Claims map[string]any `yaml:"claims"`
}

type testExpect struct {
	Decision        string            `yaml:"decision"`
	Status          int               `yaml:"status"`
	GRPCCode        string            `yaml:"grpc_code"`
	Reason          *string           `yaml:"reason"`
	Rule            *string           `yaml:"rule"`
	Issuer          *string           `yaml:"issuer"`
	ClientID        *string           `yaml:"client_id"`
	SpiffeID        *string           `yaml:"spiffe_id"`
	AuditDecision   *string           `yaml:"audit_decision"`
	Headers         map[string]string `yaml:"headers"`
	Removed         []string          `yaml:"removed"`
	WWWAuthenticate *string           `yaml:"www_authenticate"`
	ResponseHeaders map[string]string `yaml:"response_headers"`
	Body            *string           `yaml:"body"`
	// Metadata are members of dynamic_metadata beside the fixed ones
	// (testgrant.go); null expects a member to be absent.
	Metadata map[string]any `yaml:"metadata"`
}

// pathList is a YAML string or list of strings: paths, or key names.
type pathList []string

func (p *pathList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*p = pathList{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*p = l
	return nil
}

// testFiles expands paths: a file as given, a directory to every
// *_test.yaml and *_test.yml below it, in lexical order.
func testFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(name string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(name, "_test.yaml") || strings.HasSuffix(name, "_test.yml")) {
				found = append(found, name)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no *_test.yaml files", p)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

func readTestFile(name string) (*testFile, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	tf := &testFile{}
	if err := dec.Decode(tf); err != nil {
		return nil, err
	}
	switch {
	case len(tf.Policy) == 0:
		return nil, errors.New("policy: required (files or directories, relative to the test file)")
	case len(tf.Tests) == 0:
		return nil, errors.New("tests: at least one test is required")
	}
	for i, tc := range tf.Tests {
		switch {
		case tc.Name == "":
			return nil, fmt.Errorf("tests[%d].name: required", i)
		case tc.Expect.Decision != "allow" && tc.Expect.Decision != "deny":
			return nil, fmt.Errorf("tests[%d] %q: expect.decision: must be allow or deny", i, tc.Name)
		}
	}
	return tf, nil
}

// rel resolves p against the test file's directory.
func rel(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}
