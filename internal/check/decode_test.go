package check

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/extauthz/extauthz/bench"
)

// decodeCorpus is CheckRequests of every shape Envoy sends, and a few it
// does not, the fast decoder must hand on.
func decodeCorpus() []*authv3.CheckRequest {
	bearer := bench.BearerCheck("a.b.c", 7)
	assertion := bench.AssertionCheck("a.b.c", 8)
	dpop := bench.DPoPCheck(bench.DPoPCredential{Token: "a.b.c", Proof: "d.e.f"}, 9)

	raw := bench.BearerCheck("a.b.c", 10)
	h := raw.Attributes.Request.Http
	h.Headers = nil
	h.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: "authorization", RawValue: []byte("Bearer a.b.c")},
		{Key: "x-a", Value: "1"}, {Key: "X-A", RawValue: []byte{}}, {Key: "", Value: ""},
	}}
	h.RawBody = []byte("grant_type=x")
	h.Query, h.Fragment = "a=b", "frag"

	rich := bench.BearerCheck("a.b.c", 11)
	rich.Attributes.Source.Principal = "spiffe://example.org/a"
	rich.Attributes.Source.Certificate = "-----BEGIN%20CERTIFICATE-----"
	rich.Attributes.Source.Service = "svc"
	rich.Attributes.Source.Labels = map[string]string{"a": "b", "": ""}
	rich.Attributes.Destination.Principal = "spiffe://example.org/b"
	rich.Attributes.ContextExtensions = map[string]string{"rule": "api", "k": ""}
	rich.Attributes.MetadataContext = &corev3.Metadata{}
	rich.Attributes.RouteMetadataContext = &corev3.Metadata{}
	rich.Attributes.TlsSession = &authv3.AttributeContext_TLSSession{Sni: "api.bench.test"}
	rich.Attributes.Source.Address.GetSocketAddress().Protocol = corev3.SocketAddress_UDP

	// Shapes protobuf-go must decode: metadata, a pipe address, a named port.
	meta := bench.BearerCheck("a.b.c", 12)
	s, _ := structpb.NewStruct(map[string]any{"k": "v"})
	meta.Attributes.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"f": s}}
	pipe := bench.BearerCheck("a.b.c", 13)
	pipe.Attributes.Source.Address = &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/x"}}}
	named := bench.BearerCheck("a.b.c", 14)
	named.Attributes.Destination.Address.GetSocketAddress().PortSpecifier = &corev3.SocketAddress_NamedPort{NamedPort: "https"}

	return []*authv3.CheckRequest{{}, {Attributes: &authv3.AttributeContext{}}, bearer, assertion, dpop, raw, rich, meta, pipe, named}
}

// TestDecodeCheckRequest: the fast decoder decodes what protobuf-go does,
// or declines.
func TestDecodeCheckRequest(t *testing.T) {
	declined := 0
	for i, want := range decodeCorpus() {
		b, err := proto.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got := &authv3.CheckRequest{}
		if !decodeCheckRequest(b, got) {
			declined++
			continue
		}
		if !proto.Equal(got, want) {
			t.Errorf("request %d: decoded\n%v\nwant\n%v", i, got, want)
		}
	}
	if declined != 3 {
		t.Errorf("declined %d requests, want the 3 with metadata, a pipe and a named port", declined)
	}
	// Twice a singular message: protobuf-go merges, the decoder declines.
	b, _ := proto.Marshal(bench.BearerCheck("a.b.c", 1))
	if decodeCheckRequest(append(append([]byte(nil), b...), b...), &authv3.CheckRequest{}) {
		t.Error("a repeated attributes field was decoded")
	}
	// Invalid UTF-8 goes to protobuf-go (and the codec's second chance).
	bad := bench.BearerCheck("a.b.c", 1)
	bad.Attributes.Request.Http.Path = "/x"
	b, _ = proto.Marshal(bad)
	for i := range b {
		if i+1 < len(b) && b[i] == '/' && b[i+1] == 'x' {
			b[i+1] = 0xff
		}
	}
	if decodeCheckRequest(b, &authv3.CheckRequest{}) {
		t.Error("invalid UTF-8 was decoded")
	}
}

// FuzzDecodeCheckRequest: whatever the bytes, the fast decoder either
// declines or agrees with protobuf-go.
func FuzzDecodeCheckRequest(f *testing.F) {
	for _, req := range decodeCorpus() {
		b, _ := proto.Marshal(req)
		f.Add(b)
	}
	f.Add(protowire.AppendTag(nil, 1, protowire.Fixed32Type))
	f.Fuzz(func(t *testing.T, b []byte) {
		got := &authv3.CheckRequest{}
		if !decodeCheckRequest(append([]byte(nil), b...), got) {
			return
		}
		want := &authv3.CheckRequest{}
		if err := proto.Unmarshal(b, want); err != nil {
			t.Fatalf("decoded what protobuf-go refuses (%v): %v", err, got)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("decoded\n%v\nprotobuf-go\n%v", got, want)
		}
	})
}
