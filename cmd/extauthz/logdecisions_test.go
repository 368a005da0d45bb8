package main

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// TestLogDecisionsFlag: --log-decisions picks check.Config's
// DecisionLogSample: all logs every allow, denies none, and sampled (the
// default) keeps --decision-log-sample.
func TestLogDecisionsFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want float64
	}{
		{nil, 0.01},
		{[]string{"--log-decisions", "sampled"}, 0.01},
		{[]string{"--decision-log-sample", "0.25"}, 0.25},
		{[]string{"--log-decisions", "sampled", "--decision-log-sample", "1"}, 1},
		{[]string{"--log-decisions", "all"}, 1},
		{[]string{"--log-decisions=denies"}, 0},
	} {
		var cfg serveConfig
		fs := newFlagSet("serve", io.Discard)
		cfg.flags(fs)
		if err := parseFlags(fs, tc.args); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		got, err := decisionLogSample(fs, cfg.logDecisions, cfg.logSample)
		if err != nil || got != tc.want {
			t.Errorf("%q: sample %v, %v; want %v", tc.args, got, err, tc.want)
		}
	}
}

// TestLogDecisionsFlagRefused: an unknown mode, and a sample rate beside a
// mode that has none, are usage errors (exit 2) before anything starts,
// from flags and from the environment alike.
func TestLogDecisionsFlagRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown mode", []string{"--log-decisions", "allows"}, nil, `--log-decisions: want all, denies or sampled, got "allows"`},
		{"sample with all", []string{"--log-decisions", "all", "--decision-log-sample", "0.5"}, nil, "--decision-log-sample applies only to --log-decisions sampled, not all"},
		{"sample from env with denies", []string{"--log-decisions", "denies"}, map[string]string{"EXTAUTHZ_DECISION_LOG_SAMPLE": "1"}, "--decision-log-sample applies only to --log-decisions sampled, not denies"},
		{"unknown mode from env", nil, map[string]string{"EXTAUTHZ_LOG_DECISIONS": "none"}, `--log-decisions: want all, denies or sampled, got "none"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var out, errOut bytes.Buffer
			// The policy does not exist: a flag error must come first.
			args := append([]string{"serve", "--policy", "/nonexistent/policy.yaml"}, tc.args...)
			if code := run(context.Background(), args, &out, &errOut); code != 2 {
				t.Errorf("exit %d, want 2; stderr:\n%s", code, errOut.String())
			}
			if got := errOut.String(); got != "extauthz serve: "+tc.want+"\n" {
				t.Errorf("stderr %q, want %q", got, "extauthz serve: "+tc.want+"\n")
			}
		})
	}
}
