package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestDurationFlagsMustBePositive: a zero duration is refused by name, not
// read as the key plane's default (--jwks-max-stale 0 was 24 hours).
func TestDurationFlagsMustBePositive(t *testing.T) {
	for _, name := range []string{"jwks-max-stale", "jwks-min-refresh", "fetch-wait", "fetch-timeout", "replay-timeout", "shutdown-grace", "token-publish-delay", "token-refresh"} {
		var stderr bytes.Buffer
		code := serve(t.Context(), []string{"--policy", "x.yaml", "--" + name, "0s"}, io.Discard, &stderr)
		if want := "--" + name + " must be positive, got 0s"; code != 2 || !strings.Contains(stderr.String(), want) {
			t.Errorf("--%s 0s: exit %d, %q; want 2 and %q", name, code, stderr.String(), want)
		}
	}
}
