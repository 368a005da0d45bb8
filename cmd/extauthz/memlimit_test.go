package main

import "testing"

func TestMemoryLimit(t *testing.T) {
	for in, want := range map[string]int64{
		"268435456\n": 241591910, // 256Mi, the manifests' limit
		"1000":        900,
	} {
		if got, ok := memoryLimit(in); !ok || got != want {
			t.Errorf("memoryLimit(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"max\n", "", "-1", "0", "12k"} {
		if got, ok := memoryLimit(in); ok {
			t.Errorf("memoryLimit(%q) = %d, want none", in, got)
		}
	}
}
