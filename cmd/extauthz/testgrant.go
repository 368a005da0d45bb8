package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

const grantTypeJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// grant adds a test's RFC 7523 §2.1 grant to its form: the signed JWT as
// assertion, and grant_type jwt-bearer unless the test sets another.
func (b *build) grant(t *testToken, rawBody bool, form map[string]string) error {
	if t == nil {
		return nil
	}
	if rawBody {
		return errors.New("grant adds form parameters; with a raw body put the assertion in it")
	}
	tok, err := b.token(t)
	if err != nil {
		return err
	}
	form["assertion"] = tok
	if _, ok := form["grant_type"]; !ok {
		form["grant_type"] = grantTypeJWTBearer
	}
	return nil
}

// compareMetadata lists how the metadata members a test expects differ
// from md. Values compare as JSON values do (a YAML 2 is the number 2); a
// null expects the member to be absent.
func compareMetadata(want map[string]any, md map[string]*structpb.Value) []string {
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		got, set := md[k]
		gotJS := "(absent)"
		if set {
			b, _ := protojson.Marshal(got)
			gotJS = string(b)
		}
		if want[k] == nil {
			if set {
				diffs = append(diffs, fmt.Sprintf("metadata %s: want it absent, got %s", k, gotJS))
			}
			continue
		}
		wv, err := structpb.NewValue(want[k])
		if err != nil {
			diffs = append(diffs, fmt.Sprintf("metadata %s: the expected value is not a JSON value: %v", k, err))
			continue
		}
		if !set || !proto.Equal(wv, got) {
			b, _ := protojson.Marshal(wv)
			diffs = append(diffs, fmt.Sprintf("metadata %s: want %s, got %s", k, b, gotJS))
		}
	}
	return diffs
}
