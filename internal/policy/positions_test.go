package policy

import (
	"reflect"
	"testing"
)

func TestSegmentEnds(t *testing.T) {
	for path, want := range map[string][]int{
		"":                                      nil,
		"version":                               {7},
		"rules[2].headers[\"x-a\"]":             {5, 8, 16, 23},
		`rules[0].headers["a.b[c]"]`:            {5, 8, 16, 26},
		`rules[0].headers["a\"]b"]`:             {5, 8, 16, 25},
		"issuers[0].spiffe.bundle_endpoint.url": {7, 10, 17, 33, 37},
	} {
		if got := segmentEnds(path); !reflect.DeepEqual(got, want) {
			t.Errorf("segmentEnds(%q) = %v, want %v", path, got, want)
		}
	}
}
