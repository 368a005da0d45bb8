package suite

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// expectation expands the expected header values as claim values are
// (jkt(KEY), x5t#S256(FILE), {{nonce}}).
func (b *build) expectation(e testExpect) (testExpect, error) {
	expand := func(what string, m map[string]string) (map[string]string, error) {
		if m == nil {
			return nil, nil
		}
		out := make(map[string]string, len(m))
		for k, v := range m {
			x, err := b.expand(v)
			if err != nil {
				return nil, fmt.Errorf("expect.%s.%s: %w", what, k, err)
			}
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("expect.%s.%s: %s is not a header value", what, k, v)
			}
			out[k] = s
		}
		return out, nil
	}
	var err error
	if e.Headers, err = expand("headers", e.Headers); err != nil {
		return e, err
	}
	e.ResponseHeaders, err = expand("response_headers", e.ResponseHeaders)
	return e, err
}

// compare lists how resp differs from want.
func compare(want testExpect, resp *authv3.CheckResponse) []string {
	var diffs []string
	diff := func(what string, want, got any) {
		diffs = append(diffs, fmt.Sprintf("%s: want %q, got %q", what, want, got))
	}
	md := resp.GetDynamicMetadata().GetFields()
	field := func(name string, want *string) {
		if got := md[name].GetStringValue(); want != nil && *want != got {
			diff(name, *want, got)
		}
	}
	field("decision", &want.Decision)
	field("reason", want.Reason)
	field("rule", want.Rule)
	field("issuer", want.Issuer)
	field("client_id", want.ClientID)
	field("spiffe_id", want.SpiffeID)
	field("audit_decision", want.AuditDecision)
	if want.GRPCCode != "" {
		got := codes.Code(resp.GetStatus().GetCode()).String()
		norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }
		if norm(got) != norm(want.GRPCCode) {
			diff("grpc_code", want.GRPCCode, got)
		}
	}
	denied := resp.GetDeniedResponse()
	if want.Status != 0 && int(denied.GetStatus().GetCode()) != want.Status {
		diffs = append(diffs, fmt.Sprintf("status: want %d, got %d", want.Status, denied.GetStatus().GetCode()))
	}
	if want.Body != nil && denied.GetBody() != *want.Body {
		diff("body", *want.Body, denied.GetBody())
	}
	// The headers sent to the client: the deny's, or those an allow adds
	// to the upstream's response (DPoP-Nonce).
	respHeaders := headerMap(denied.GetHeaders())
	if ok := resp.GetOkResponse(); ok != nil {
		respHeaders = headerMap(ok.GetResponseHeadersToAdd())
	}
	if want.WWWAuthenticate != nil && respHeaders["www-authenticate"] != *want.WWWAuthenticate {
		diff("www_authenticate", *want.WWWAuthenticate, respHeaders["www-authenticate"])
	}
	for _, k := range slices.Sorted(maps.Keys(want.ResponseHeaders)) {
		if got, set := respHeaders[strings.ToLower(k)]; !matches(want.ResponseHeaders[k], got, set) {
			diff("response header "+k, want.ResponseHeaders[k], got)
		}
	}
	ok := resp.GetOkResponse()
	if want.Headers != nil {
		got := headerMap(ok.GetHeaders())
		for _, k := range slices.Sorted(maps.Keys(want.Headers)) {
			if g, set := got[strings.ToLower(k)]; !matches(want.Headers[k], g, set) {
				diff("header "+k, want.Headers[k], g)
			}
			delete(got, strings.ToLower(k))
		}
		for _, k := range slices.Sorted(maps.Keys(got)) {
			diffs = append(diffs, fmt.Sprintf("header %s: not expected, got %q", k, got[k]))
		}
	}
	diffs = append(diffs, compareMetadata(want.Metadata, md)...)
	for _, name := range want.Removed {
		if !slices.Contains(ok.GetHeadersToRemove(), strings.ToLower(name)) {
			diffs = append(diffs, fmt.Sprintf("removed: %q is not in headers_to_remove %q", name, ok.GetHeadersToRemove()))
		}
	}
	return diffs
}

// matches compares a header value with its expectation; "*" takes any value
// but requires the header to be there.
func matches(want, got string, set bool) bool {
	return set && (want == "*" || want == got)
}

func headerMap(hs []*corev3.HeaderValueOption) map[string]string {
	m := make(map[string]string, len(hs))
	for _, h := range hs {
		m[strings.ToLower(h.GetHeader().GetKey())] = h.GetHeader().GetValue()
	}
	return m
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
