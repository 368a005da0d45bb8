package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestLogDurations: a duration in a log line carries its unit, in JSON as
// in text.
func TestLogDurations(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		var b bytes.Buffer
		log, err := newLogger(&b, format, "info")
		if err != nil {
			t.Fatal(err)
		}
		log.Info("keys: key set loaded", "refresh_in", 90*time.Second)
		want := `"refresh_in":"1m30s"`
		if format == "text" {
			want = `refresh_in=1m30s`
		}
		if !strings.Contains(b.String(), want) {
			t.Errorf("%s: %q lacks %s", format, b.String(), want)
		}
	}
}
