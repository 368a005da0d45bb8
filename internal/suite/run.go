package suite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/offline"
)

// Options are a run's flags.
type Options struct {
	// Filter selects the tests that run, by name; nil runs all.
	Filter *regexp.Regexp
	// Now, unless zero, is every file's clock (overriding each file's now:).
	Now time.Time
	// Format is text, json or junit; with json and junit the summary goes
	// to stderr.
	Format string
	// Verbose prints the decision steps of passing tests too.
	Verbose bool
}

// Run runs the test files paths name (files, or directories holding
// *_test.yaml), writes the results to stdout, errors and, with json or
// junit, the summary to stderr, and returns extauthz test's exit status:
// 0 when every test passes, 1 when any fails, 2 when a file cannot run.
func Run(ctx context.Context, paths []string, o Options, stdout, stderr io.Writer) int {
	rep, err := newReporter(o.Format, o.Verbose)
	if err != nil {
		fmt.Fprintln(stderr, "extauthz test: --format:", err)
		return 2
	}
	files, err := testFiles(paths)
	if err != nil {
		fmt.Fprintln(stderr, "extauthz test:", err)
		return 2
	}
	filter := o.Filter
	if filter == nil {
		filter = regexp.MustCompile("")
	}
	r := &testRunner{filter: filter, now: o.Now, coverage: map[string]*coverage{}}
	broken := false
	for _, name := range files {
		fr := r.runFile(ctx, name)
		if fr.Error != "" {
			fmt.Fprintf(stderr, "ERROR %s: %s\n", name, fr.Error)
			broken = true
		}
		rep.file(stdout, fr)
	}
	summary := stdout
	if rep.format != "text" {
		summary = stderr
	}
	if err := rep.end(stdout, summary, r); err != nil {
		fmt.Fprintln(stderr, "extauthz test:", err)
		return 2
	}
	switch {
	case broken:
		return 2
	case r.failed > 0:
		return 1
	}
	return 0
}

type testRunner struct {
	filter *regexp.Regexp
	// now, unless zero, is every file's clock (--now).
	now            time.Time
	passed, failed int
	files          []*fileResult
	// coverage is by policy hash, so files testing one policy add up.
	coverage map[string]*coverage
	policies []*coverage // in the order first seen
}

// fileResult is what one test file's run found.
type fileResult struct {
	File string `json:"file"`
	// Error is why the file could not run; its tests then did not.
	Error string       `json:"error,omitempty"`
	Tests []testResult `json:"tests"`
	// Policy is the coverage line's name of the file's policy.
	Policy  string  `json:"policy,omitempty"`
	Seconds float64 `json:"seconds"`
	cov     *coverage
}

// testResult is one test's outcome.
type testResult struct {
	Name     string `json:"name"`
	Passed   bool   `json:"passed"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	Rule     string `json:"rule,omitempty"`
	// Diffs are how the answer differs from the expectations.
	Diffs   []string     `json:"diffs,omitempty"`
	Steps   []check.Step `json:"steps,omitempty"`
	Seconds float64      `json:"seconds"`
}

// runFile runs one test file against a fresh server, so the replay store is
// shared by the file's tests (in order) and by no other file.
func (r *testRunner) runFile(ctx context.Context, name string) *fileResult {
	start := time.Now()
	fr := &fileResult{File: name, Tests: []testResult{}}
	r.files = append(r.files, fr)
	if err := r.run(ctx, name, fr); err != nil {
		fr.Error = err.Error()
		fr.Tests = []testResult{}
	}
	fr.Seconds = time.Since(start).Seconds()
	return fr
}

func (r *testRunner) run(ctx context.Context, name string, fr *fileResult) error {
	tf, err := readTestFile(name)
	if err != nil {
		return err
	}
	dir := filepath.Dir(name)
	// The clock: --now, else the file's now:, else the time it starts.
	now := r.now
	switch {
	case !now.IsZero():
	case tf.Now != "":
		if now, err = time.Parse(time.RFC3339, tf.Now); err != nil {
			return fmt.Errorf("now: %w", err)
		}
	default:
		now = time.Now().UTC().Truncate(time.Second)
	}
	signers := map[string]*signer{}
	for _, k := range slices.Sorted(maps.Keys(tf.Keys)) {
		if signers[k], err = readSigner(rel(dir, tf.Keys[k])); err != nil {
			return fmt.Errorf("keys[%q]: %w", k, err)
		}
	}
	issuerKeys := map[string]keys.Spec{}
	for _, is := range slices.Sorted(maps.Keys(tf.IssuerKeys)) {
		if issuerKeys[is], err = keySpec(signers, tf.Keys, dir, tf.IssuerKeys[is]); err != nil {
			return fmt.Errorf("issuer_keys[%q]: %w", is, err)
		}
	}
	policies := make([]string, len(tf.Policy))
	for i, p := range tf.Policy {
		policies[i] = rel(dir, p)
	}
	srv, err := offline.New(ctx, offline.Config{
		Policies:   policies,
		Now:        func() time.Time { return now },
		IssuerKeys: issuerKeys,
		Check:      check.Config{Audit: tf.Audit},
	})
	if ike := (*offline.IssuerKeysError)(nil); errors.As(err, &ike) {
		return fmt.Errorf("issuer_keys[%q]: %w", ike.Issuer, ike.Err)
	}
	if err != nil {
		return err
	}
	defer srv.Close()
	// The nonce the server issues is known before any request is sent:
	// the clock stands still.
	b := &build{dir: dir, signers: signers, now: now, nonce: srv.Nonces.Current()}
	// Build every request first: a broken test is a file error, not a failure.
	reqs := make([]*authv3.CheckRequest, len(tf.Tests))
	wants := make([]testExpect, len(tf.Tests))
	for i, tc := range tf.Tests {
		if reqs[i], err = b.request(tc); err == nil {
			wants[i], err = b.expectation(tc.Expect)
		}
		if err != nil {
			return fmt.Errorf("tests[%d] %q: %w", i, tc.Name, err)
		}
	}
	cov := r.coverageOf(srv.Snapshot, policies)
	fr.Policy, fr.cov = cov.name, cov
	for i, tc := range tf.Tests {
		if !r.filter.MatchString(tc.Name) {
			continue
		}
		start := time.Now()
		resp, steps := srv.Explain(ctx, reqs[i])
		md := resp.GetDynamicMetadata().GetFields()
		res := testResult{
			Name:     tc.Name,
			Decision: md["decision"].GetStringValue(),
			Reason:   md["reason"].GetStringValue(),
			Rule:     md["rule"].GetStringValue(),
			Diffs:    compare(wants[i], resp),
			Steps:    steps,
			Seconds:  time.Since(start).Seconds(),
		}
		res.Passed = len(res.Diffs) == 0
		if res.Passed {
			r.passed++
		} else {
			r.failed++
		}
		cov.record(res.Rule, steps)
		fr.Tests = append(fr.Tests, res)
	}
	return nil
}
