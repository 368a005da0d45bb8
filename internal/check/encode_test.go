package check

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/extauthz/extauthz/internal/policy"
)

// TestEncodeCheckResponse: every response a decision makes encodes to what
// protobuf-go decodes back to the same message; a response with fields the
// encoder does not know is left to protobuf-go.
func TestEncodeCheckResponse(t *testing.T) {
	snap := &policy.Snapshot{Realm: "r", Managed: []string{"x-client-id", "x-tenant"}}
	var resps []*authv3.CheckResponse
	for _, d := range []*decision{
		{allow: true, reason: ReasonAllowed, clientID: "c", spiffeID: "spiffe://td/w"},
		{allow: true, reason: ReasonAllowed, headers: []header{{"x-client-id", "c"}}, nonce: "n"},
		{allow: true, reason: ReasonAllowed, headers: []header{{"x-client-id", strings.Repeat("v", 300)}, {"x-tenant", "t"}}, audit: "allow"},
	} {
		resps = append(resps, d.response(snap, nil))
	}
	for k := denyBearerMissing; k <= denyTokenDPoPNonce; k++ {
		d := deny(k, ReasonMissing)
		d.nonce, d.clientID = "n", "line\nbreak"
		resps = append(resps, d.response(snap, nil))
	}
	resps = append(resps, &authv3.CheckResponse{}, &authv3.CheckResponse{HttpResponse: &authv3.CheckResponse_OkResponse{}})
	for i, want := range resps {
		b, ok := encodeCheckResponse(nil, want, nil)
		if !ok {
			t.Errorf("response %d: not encoded: %v", i, want)
			continue
		}
		got := &authv3.CheckResponse{}
		if err := proto.Unmarshal(b, got); err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if !proto.Equal(got, want) {
			t.Errorf("response %d: encoded\n%v\nwant\n%v", i, got, want)
		}
	}
	num, _ := structpb.NewValue(1.5)
	for i, other := range []*authv3.CheckResponse{
		{HttpResponse: &authv3.CheckResponse_ErrorResponse{ErrorResponse: &authv3.DeniedHttpResponse{}}},
		{DynamicMetadata: &structpb.Struct{Fields: map[string]*structpb.Value{"n": num}}},
		{HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{QueryParametersToRemove: []string{"a"}}}},
		{HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{Headers: []*corev3.HeaderValueOption{{Append: wrapperspb.Bool(true)}}}}},
	} {
		if _, ok := encodeCheckResponse(nil, other, nil); ok {
			t.Errorf("other %d was encoded", i)
		}
	}
}
