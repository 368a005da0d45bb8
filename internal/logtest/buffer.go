// Package logtest holds what tests use to read the logs of a server they
// run: a buffer that the server's goroutines, or a child process's output
// copier, may write while the test reads it.
//
// It is a test helper: nothing but tests imports it.
package logtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

// Buffer is a bytes.Buffer safe for concurrent writes and reads.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// WaitJSON waits up to 15 seconds for a JSON log line whose msg starts with
// msg and returns it, or fails t.
func (b *Buffer) WaitJSON(t testing.TB, msg string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(b.String()))
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil {
				if m, ok := line["msg"].(string); ok && strings.HasPrefix(m, msg) {
					return line
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %q log line:\n%s", msg, b.String())
	return nil
}
