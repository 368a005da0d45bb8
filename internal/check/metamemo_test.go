package check

import (
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/extauthz/extauthz/internal/policy"
)

// TestMetaMemos: an allow shares the last Struct of its rule only when
// every input is the same, and its metadata is always what it would build
// itself.
func TestMetaMemos(t *testing.T) {
	var m metaMemos
	rules := []*policy.Rule{{Name: "api"}, {Name: "other"}}
	iss := &policy.Issuer{Name: "idp"}
	allow := func(rule *policy.Rule, client, audit string) *decision {
		return &decision{allow: true, reason: ReasonAllowed, rule: rule, issuer: iss, clientID: client, audit: audit}
	}
	get := func(d *decision) *structpb.Struct {
		t.Helper()
		st := m.metadata(d, &metaParts{})
		if want := d.metadata(&metaParts{}); !proto.Equal(st, want) {
			t.Fatalf("metadata %v, want %v", st, want)
		}
		return st
	}
	a := get(allow(rules[0], "a", ""))
	if get(allow(rules[0], "a", "")) != a {
		t.Error("the same allow twice did not share its metadata")
	}
	if get(allow(rules[0], "b", "")) == a {
		t.Error("another client shared the first's metadata")
	}
	if get(allow(rules[0], "a", "")) == a {
		t.Error("a slot kept the Struct it replaced")
	}
	if get(allow(rules[0], "a", "allow")) == get(allow(rules[0], "a", "")) {
		t.Error("an audited allow shared an unaudited one's metadata")
	}
	if get(allow(rules[1], "a", "")) == get(allow(rules[0], "a", "")) {
		t.Error("two rules shared metadata")
	}
	d := allow(rules[0], "a", "")
	d.reason = ReasonPublicRoute
	get(d)
	d2 := allow(rules[0], "a", "")
	d2.issuer = &policy.Issuer{Name: "idp"}
	get(d2)
	withMembers := allow(rules[0], "a", "")
	withMembers.meta = []metaMember{{name: "user", value: structpb.NewStringValue("x")}}
	if first := get(withMembers); get(withMembers) == first {
		t.Error("an allow with rule metadata members was shared")
	}
	denied := allow(rules[0], "a", "")
	denied.allow, denied.reason = false, ReasonScope
	if first := get(denied); get(denied) == first {
		t.Error("a deny was shared")
	}
	var none *metaMemos
	if st := none.metadata(allow(rules[0], "a", ""), &metaParts{}); st.GetFields()["client_id"].GetStringValue() != "a" {
		t.Errorf("without memos: %v", st)
	}
}

// TestMetaMemoWire: the response of an allow whose metadata is a memo's
// carries the memo's wire form, which decodes to that very Struct; a
// Struct no memo holds is encoded as it stands.
func TestMetaMemoWire(t *testing.T) {
	var m metaMemos
	rule := &policy.Rule{Name: "api"}
	d := &decision{allow: true, reason: ReasonAllowed, rule: rule, issuer: &policy.Issuer{Name: "idp"}, clientID: "a"}
	shared := m.metadata(d, &metaParts{})
	if m.wireOf(shared) == nil {
		t.Fatal("no wire form for the memo's Struct")
	}
	own := d.metadata(&metaParts{})
	if m.wireOf(own) != nil {
		t.Fatal("a wire form for a Struct no memo holds")
	}
	for _, st := range []*structpb.Struct{shared, own} {
		resp := &authv3.CheckResponse{Status: &status.Status{}, DynamicMetadata: st}
		b, ok := encodeCheckResponse(nil, resp, &m)
		if !ok {
			t.Fatal("not encoded")
		}
		var got authv3.CheckResponse
		if err := proto.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got.DynamicMetadata, shared) {
			t.Errorf("metadata decoded as %v, want %v", got.DynamicMetadata, shared)
		}
	}
}
