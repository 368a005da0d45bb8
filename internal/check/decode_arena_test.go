package check

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/extauthz/extauthz/internal/envoytest"
)

// TestDecodeArenaShapes: the shapes where the arena's messages could show
// through (an Address without its socket address, an empty socket address,
// a port given twice) decode as protobuf-go decodes them, or are declined.
func TestDecodeArenaShapes(t *testing.T) {
	check := func() *authv3.CheckRequest {
		req := envoytest.Request{
			ID: "req-1", Method: "GET", Host: "api.example.com", Path: "/reports",
			Headers: [][2]string{{"authorization", "Bearer a.b.c"}},
			Source:  envoytest.SocketPeer("10.0.0.7", 43210),
		}.Proto()
		req.Attributes.Destination = envoytest.SocketPeer("10.0.0.1", 8443)
		return req
	}
	if !decodeCheckRequest(mustMarshal(t, check()), &authv3.CheckRequest{}) {
		t.Fatal("the decoder declined an ordinary request")
	}
	empty := check()
	empty.Attributes.Source.Address = &corev3.Address{}
	bare := check()
	bare.Attributes.Destination.Address = &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{}}}
	cases := map[string][]byte{}
	for name, req := range map[string]*authv3.CheckRequest{"empty address": empty, "empty socket address": bare} {
		cases[name] = mustMarshal(t, req)
	}
	// A source whose socket address names its port twice: the last counts.
	sa := protowire.AppendTag(nil, 3, protowire.VarintType)
	sa = protowire.AppendVarint(sa, 80)
	sa = protowire.AppendTag(sa, 3, protowire.VarintType)
	sa = protowire.AppendVarint(sa, 443)
	addr := protowire.AppendTag(nil, 1, protowire.BytesType)
	addr = protowire.AppendBytes(addr, sa)
	peer := protowire.AppendTag(nil, 1, protowire.BytesType)
	peer = protowire.AppendBytes(peer, addr)
	attrs := protowire.AppendTag(nil, 1, protowire.BytesType)
	attrs = protowire.AppendBytes(attrs, peer)
	cases["port twice"] = protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), attrs)

	for name, b := range cases {
		want := &authv3.CheckRequest{}
		if err := proto.Unmarshal(b, want); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := &authv3.CheckRequest{}
		if !decodeCheckRequest(append([]byte(nil), b...), got) {
			if name == "port twice" || name == "empty socket address" {
				t.Errorf("%s: declined, want decoded", name)
			}
			continue
		}
		if !proto.Equal(got, want) {
			t.Errorf("%s: decoded\n%v\nwant\n%v", name, got, want)
		}
	}
	got := &authv3.CheckRequest{}
	if decodeCheckRequest(append([]byte(nil), cases["port twice"]...), got) {
		if port := got.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetPortValue(); port != 443 {
			t.Errorf("port twice: port %d, want 443", port)
		}
	}
}

func mustMarshal(t *testing.T, req *authv3.CheckRequest) []byte {
	t.Helper()
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
