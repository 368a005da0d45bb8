package suite

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/policy"
)

// coverage records which rules and require expressions of one policy the
// tests exercised: a rule when a decision names it (allowed or denied,
// however far its checks got), a require expression when it was
// evaluated.
type coverage struct {
	name     string // the policy, as the first file to test it names it
	snap     *policy.Snapshot
	index    map[string]int
	rules    []bool
	requires [][]bool // by rule, then by position in the rule's require
}

// coverageOf returns the coverage of snap, shared by every file testing
// the same policy files with the same contents.
func (r *testRunner) coverageOf(snap *policy.Snapshot, policies []string) *coverage {
	if c := r.coverage[snap.Hash]; c != nil {
		return c
	}
	c := &coverage{
		name:     strings.Join(policies, ","),
		snap:     snap,
		index:    make(map[string]int, len(snap.Rules)),
		rules:    make([]bool, len(snap.Rules)),
		requires: make([][]bool, len(snap.Rules)),
	}
	for i, rule := range snap.Rules {
		c.index[rule.Name] = i
		c.requires[i] = make([]bool, len(rule.Require))
	}
	r.coverage[snap.Hash] = c
	r.policies = append(r.policies, c)
	return c
}

// record notes a decision by rule ("" for none) and its steps: the rule's
// require expressions run in order, one "require" step each, until one
// fails.
func (c *coverage) record(rule string, steps []check.Step) {
	i, ok := c.index[rule]
	if !ok {
		return
	}
	c.rules[i] = true
	n := 0
	for _, s := range steps {
		if s.Check == "require" && n < len(c.requires[i]) {
			c.requires[i][n] = true
			n++
		}
	}
}

// coverageSummary is a policy's coverage as reported.
type coverageSummary struct {
	Policy   string  `json:"policy"`
	Rules    counted `json:"rules"`
	Requires counted `json:"requires"`
	// NotExercised names the rules no test reached, then the require
	// expressions of reached rules that no test evaluated (those of
	// rules not reached are counted, not listed).
	NotExercised []string `json:"not_exercised"`
}

type counted struct {
	Exercised int `json:"exercised"`
	Total     int `json:"total"`
}

func (c *coverage) summary() coverageSummary {
	s := coverageSummary{Policy: c.name, NotExercised: []string{}}
	var requires []string
	for i, rule := range c.snap.Rules {
		s.Rules.Total++
		s.Requires.Total += len(c.requires[i])
		if !c.rules[i] {
			s.NotExercised = append(s.NotExercised, fmt.Sprintf("rules[%d] %s", i, rule.Name))
			continue
		}
		s.Rules.Exercised++
		for j, done := range c.requires[i] {
			if done {
				s.Requires.Exercised++
			} else {
				requires = append(requires, fmt.Sprintf("rules[%d] %s require[%d]", i, rule.Name, j))
			}
		}
	}
	s.NotExercised = append(s.NotExercised, requires...)
	return s
}

// String is the coverage line.
func (s coverageSummary) String() string {
	line := fmt.Sprintf("coverage of %s: %d/%d rules, %d/%d requires", s.Policy,
		s.Rules.Exercised, s.Rules.Total, s.Requires.Exercised, s.Requires.Total)
	if len(s.NotExercised) > 0 {
		line += "; not exercised: " + strings.Join(s.NotExercised, ", ")
	}
	return line
}

// reporter writes the results in one of the --format outputs.
type reporter struct {
	format  string
	verbose bool
}

func newReporter(format string, verbose bool) (*reporter, error) {
	switch format {
	case "text", "json", "junit":
		return &reporter{format: format, verbose: verbose}, nil
	}
	return nil, fmt.Errorf("want text, json or junit, got %q", format)
}

// showSteps says whether a test's decision steps are reported: always for
// a failure, with -v for a pass too.
func (p *reporter) showSteps(t testResult) bool { return !t.Passed || p.verbose }

// file reports one file as soon as it has run; only text streams.
func (p *reporter) file(w io.Writer, fr *fileResult) {
	if p.format != "text" {
		return
	}
	for _, t := range fr.Tests {
		if t.Passed {
			fmt.Fprintf(w, "PASS %s: %s\n", fr.File, t.Name)
		} else {
			fmt.Fprintf(w, "FAIL %s: %s: %s\n", fr.File, t.Name, strings.Join(t.Diffs, "; "))
		}
		if p.showSteps(t) {
			writeSteps(w, t.Steps)
		}
	}
}

func writeSteps(w io.Writer, steps []check.Step) {
	for _, s := range steps {
		mark := "ok  "
		if !s.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "    %s %s: %s\n", mark, s.Check, s.Detail)
	}
}

// end writes the document (json, junit) to out, and the coverage lines and
// the "N passed, M failed" line, always last, to summary.
func (p *reporter) end(out, summary io.Writer, r *testRunner) error {
	covs := make([]coverageSummary, len(r.policies))
	for i, c := range r.policies {
		covs[i] = c.summary()
	}
	var err error
	switch p.format {
	case "json":
		err = p.json(out, r, covs)
	case "junit":
		err = p.junit(out, r)
	}
	for _, c := range covs {
		fmt.Fprintln(summary, c)
	}
	fmt.Fprintf(summary, "%d passed, %d failed\n", r.passed, r.failed)
	return err
}

// testReport is the --format json document.
type testReport struct {
	Files    []*fileResult     `json:"files"`
	Coverage []coverageSummary `json:"coverage"`
	Passed   int               `json:"passed"`
	Failed   int               `json:"failed"`
	// Errors counts the files that could not run.
	Errors int `json:"errors"`
}

func (p *reporter) json(w io.Writer, r *testRunner, covs []coverageSummary) error {
	doc := testReport{Files: make([]*fileResult, len(r.files)), Coverage: covs, Passed: r.passed, Failed: r.failed}
	for i, fr := range r.files {
		c := *fr
		c.Tests = slices.Clone(fr.Tests)
		for j := range c.Tests {
			if !p.showSteps(c.Tests[j]) {
				c.Tests[j].Steps = nil
			}
		}
		if fr.Error != "" {
			doc.Errors++
		}
		doc.Files[i] = &c
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// The JUnit XML that CI systems read (Jenkins, GitLab, GitHub actions):
// a testsuite per file, a testcase per test, a failure per failed test and
// an error for a file that could not run.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func (p *reporter) junit(w io.Writer, r *testRunner) error {
	seconds := func(s float64) string { return strconv.FormatFloat(s, 'f', 3, 64) }
	doc := junitSuites{Name: "extauthz test"}
	total := 0.0
	for _, fr := range r.files {
		class := junitClass(fr.File)
		s := junitSuite{Name: fr.File, Tests: len(fr.Tests), Time: seconds(fr.Seconds)}
		if fr.cov != nil {
			s.Properties = []junitProperty{{Name: "coverage", Value: fr.cov.summary().String()}}
		}
		if fr.Error != "" {
			s.Tests, s.Errors = 1, 1
			s.Cases = append(s.Cases, junitCase{Name: "file error", Classname: class, Time: s.Time,
				Error: &junitProblem{Message: fr.Error, Type: "file_error", Text: fr.Error}})
		}
		for _, t := range fr.Tests {
			c := junitCase{Name: t.Name, Classname: class, Time: seconds(t.Seconds)}
			var steps strings.Builder
			if p.showSteps(t) {
				writeSteps(&steps, t.Steps)
			}
			if t.Passed {
				c.SystemOut = steps.String()
			} else {
				s.Failures++
				msg := strings.Join(t.Diffs, "; ")
				c.Failure = &junitProblem{Message: msg, Type: "mismatch", Text: strings.Join(t.Diffs, "\n") + "\n" + steps.String()}
			}
			s.Cases = append(s.Cases, c)
		}
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
		total += fr.Seconds
		doc.Suites = append(doc.Suites, s)
	}
	doc.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// junitClass is a test file's testcase classname: its path without the
// extension, dots between directories, as CI systems group classnames
// (examples/policies/tests/apis_test.yaml is examples.policies.tests.apis_test).
func junitClass(file string) string {
	f := strings.TrimSuffix(filepath.ToSlash(file), filepath.Ext(file))
	var parts []string
	for _, part := range strings.Split(f, "/") {
		if part != "" && part != "." && part != ".." {
			parts = append(parts, part)
		}
	}
	return strings.Join(parts, ".")
}
