package check_test

import (
	"encoding/base64"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// want is an exact expected outcome.
type want struct {
	code codes.Code
	// status, for a deny, is the HTTP status Envoy sends.
	status int
	// headers are, for a deny, the response headers; for an allow, the
	// headers set upstream.
	headers map[string]string
	body    string
	// remove is headers_to_remove of an allow.
	remove []string
	// downstream is response_headers_to_add of an allow (a DPoP-Nonce).
	downstream map[string]string
	// The dynamic metadata; decision follows from code.
	rule, reason, issuer, clientID, spiffeID string
	// audit is the audit_decision metadata field, "" when absent.
	audit string
}

func (w want) by(issuer, clientID, spiffeID string) want {
	w.issuer, w.clientID, w.spiffeID = issuer, clientID, spiffeID
	return w
}

func (w want) onRule(rule string) want {
	w.rule = rule
	return w
}

var jsonHeaders = map[string]string{"content-type": "application/json", "cache-control": "no-store"}

// allowed is an allow of rule that sets set and removes every other header
// of basePolicy's managed list.
func allowed(rule, reason string, set map[string]string) want {
	var remove []string
	for _, m := range managed {
		if _, ok := set[m]; !ok {
			remove = append(remove, m)
		}
	}
	return want{code: codes.OK, headers: set, remove: remove, rule: rule, reason: reason}
}

func invalidClient(reason string) want {
	return want{code: codes.Unauthenticated, status: 401, headers: jsonHeaders, body: `{"error":"invalid_client"}`, rule: "token-endpoint", reason: reason}
}

func invalidRequest(reason string) want {
	return want{code: codes.PermissionDenied, status: 400, headers: jsonHeaders, body: `{"error":"invalid_request"}`, rule: "token-endpoint", reason: reason}
}

func accessDenied(rule, reason string) want {
	return want{code: codes.PermissionDenied, status: 403, headers: jsonHeaders, body: `{"error":"access_denied"}`, rule: rule, reason: reason}
}

// assertResponse compares resp with w exactly: status, every response or
// upstream header, body, headers_to_remove and every metadata field.
func assertResponse(t *testing.T, resp *authv3.CheckResponse, w want) {
	t.Helper()
	failed := false
	errorf := func(format string, args ...any) {
		t.Helper()
		failed = true
		t.Errorf(format, args...)
	}
	if got := codes.Code(resp.GetStatus().GetCode()); got != w.code {
		errorf("status code = %v, want %v", got, w.code)
	}
	decision := "deny"
	if w.code == codes.OK {
		decision = "allow"
		ok := resp.GetOkResponse()
		if ok == nil || resp.GetDeniedResponse() != nil {
			errorf("want ok_response only")
		}
		if got := headerList(ok.GetHeaders(), true, nil); !slices.Equal(got, mapList(w.headers)) {
			errorf("upstream headers =\n  %q\nwant\n  %q", got, mapList(w.headers))
		}
		if got := sorted(ok.GetHeadersToRemove()); !slices.Equal(got, sorted(w.remove)) {
			errorf("headers_to_remove = %q, want %q", got, sorted(w.remove))
		}
		if got := headerList(ok.GetResponseHeadersToAdd(), true, w.downstream); !slices.Equal(got, mapList(w.downstream)) {
			errorf("response_headers_to_add = %q, want %q", got, mapList(w.downstream))
		}
		//lint:ignore SA1019 checking that the deprecated field stays unset
		if len(ok.GetQueryParametersToSet()) > 0 || len(ok.GetQueryParametersToRemove()) > 0 || ok.GetDynamicMetadata() != nil {
			errorf("ok_response carries more than headers and headers_to_remove")
		}
	} else {
		d := resp.GetDeniedResponse()
		if d == nil || resp.GetOkResponse() != nil {
			errorf("want denied_response only")
		}
		if got := int(d.GetStatus().GetCode()); got != w.status {
			errorf("HTTP status = %d, want %d", got, w.status)
		}
		if got := headerList(d.GetHeaders(), false, w.headers); !slices.Equal(got, mapList(w.headers)) {
			errorf("response headers =\n  %q\nwant\n  %q", got, mapList(w.headers))
		}
		if d.GetBody() != w.body {
			errorf("body = %q, want %q", d.GetBody(), w.body)
		}
	}
	wantMeta := map[string]string{
		"decision": decision, "rule": w.rule, "reason": w.reason,
		"issuer": w.issuer, "client_id": w.clientID, "spiffe_id": w.spiffeID,
	}
	if w.audit != "" {
		wantMeta["audit_decision"] = w.audit
	}
	gotMeta := map[string]string{}
	for k, v := range resp.GetDynamicMetadata().GetFields() {
		if sv, ok := v.GetKind().(*structpb.Value_StringValue); ok {
			gotMeta[k] = sv.StringValue
		} else {
			gotMeta[k] = fmt.Sprintf("<not a string: %v>", v)
		}
	}
	if !mapsEqual(gotMeta, wantMeta) {
		errorf("dynamic_metadata = %v\nwant               %v", gotMeta, wantMeta)
	}
	if failed {
		js, _ := protojson.MarshalOptions{Multiline: true}.Marshal(resp)
		t.Logf("response:\n%s", js)
	}
}

// anySeconds, as a wanted header value, accepts any positive whole number
// of seconds: the keys plane derives Retry-After from its backoff.
const anySeconds = "<seconds>"

// anyNonce, as a wanted header value, accepts any DPoP nonce of ours: 32
// base64url characters.
const anyNonce = "<nonce>"

// headerList renders header options as sorted "name: value" lines; an allow
// must overwrite what the client sent. A value that want gives as
// anySeconds is rendered as anySeconds when it is a positive integer.
func headerList(hs []*corev3.HeaderValueOption, overwrite bool, want map[string]string) []string {
	out := make([]string, 0, len(hs))
	for _, h := range hs {
		v := h.GetHeader().GetValue()
		switch want[h.GetHeader().GetKey()] {
		case anySeconds:
			if n, err := strconv.Atoi(v); err == nil && n > 0 && strconv.Itoa(n) == v {
				v = anySeconds
			}
		case anyNonce:
			if b, err := base64.RawURLEncoding.DecodeString(v); err == nil && len(b) == 24 {
				v = anyNonce
			}
		}
		line := h.GetHeader().GetKey() + ": " + v
		if len(h.GetHeader().GetRawValue()) > 0 {
			line += " raw=" + string(h.GetHeader().GetRawValue())
		}
		if overwrite && h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			line += " (" + h.GetAppendAction().String() + ")"
		}
		//lint:ignore SA1019 checking that the deprecated field stays unset
		if h.GetAppend() != nil {
			line += " (deprecated append set)"
		}
		out = append(out, line)
	}
	sort.Strings(out)
	return out
}

func mapList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+": "+v)
	}
	sort.Strings(out)
	return out
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	if out == nil {
		out = []string{}
	}
	sort.Strings(out)
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
