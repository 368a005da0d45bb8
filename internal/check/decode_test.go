package check

import (
	"bytes"
	"reflect"
	"testing"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/extauthz/extauthz/bench"
	"github.com/extauthz/extauthz/internal/envoytest"
)

// decodeCorpus is CheckRequests of every shape Envoy sends, and a few
// decodeView must hand on.
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

// viewFields is what a Check reads of a request view, to compare views.
type viewFields struct {
	Method, Host, Path, Query, Scheme, Authority string
	Headers, Ext                                 map[string]string
	Authorization                                string
	HasAuthorization, PartialBody                bool
	Body, PeerCert, Principal                    string
}

func fieldsOf(r *httpRequest, ext map[string]string) viewFields {
	f := viewFields{
		Method: r.Method, Host: r.Host, Path: r.Path, Query: r.Query, Scheme: r.scheme, Authority: r.authority,
		Headers: r.HeaderMap(), Ext: ext, Authorization: r.authorization, HasAuthorization: r.hasAuthorization,
		PartialBody: r.partialBody, Body: r.body, PeerCert: r.peerCert, Principal: r.principal,
	}
	if len(f.Headers) == 0 {
		f.Headers = nil
	}
	if len(f.Ext) == 0 {
		f.Ext = nil
	}
	return f
}

// decodeBoth decodes b with decodeView and, when it accepts, with
// protobuf-go and readRequest; ok is false when decodeView declined.
func decodeBoth(t *testing.T, b []byte) (got, want viewFields, ok bool) {
	t.Helper()
	c := &decodedCheck{}
	if !decodeView(append([]byte(nil), b...), c) {
		return got, want, false
	}
	if c.msg != nil {
		t.Fatal("decodeView set the message")
	}
	got = fieldsOf(c.view())
	msg := &authv3.CheckRequest{}
	if err := proto.Unmarshal(b, msg); err != nil {
		t.Fatalf("decoded what protobuf-go refuses (%v): %+v", err, got)
	}
	want = fieldsOf((&decodedCheck{msg: msg}).view())
	return got, want, true
}

// TestDecodeView: decodeView gives the view protobuf-go and readRequest
// give, or declines and writes nothing.
func TestDecodeView(t *testing.T) {
	declined := 0
	for i, req := range decodeCorpus() {
		got, want, ok := decodeBoth(t, mustMarshal(t, req))
		if !ok {
			declined++
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("request %d: decoded\n%+v\nwant\n%+v", i, got, want)
		}
	}
	if declined != 4 {
		t.Errorf("declined %d requests, want the 4 with header_map, metadata, a pipe and a named port", declined)
	}

	base := func() *authv3.CheckRequest {
		req := envoytest.Request{
			ID: "req-1", Method: "GET", Host: "api.example.com", Path: "/reports?x=1",
			Headers: [][2]string{{"authorization", "Bearer a.b.c"}, {"user-agent", "u"}},
			Source:  envoytest.SocketPeer("10.0.0.7", 43210),
		}.Proto()
		req.Attributes.Destination = envoytest.SocketPeer("10.0.0.1", 8443)
		return req
	}
	if _, _, ok := decodeBoth(t, mustMarshal(t, base())); !ok {
		t.Fatal("declined an ordinary request")
	}
	upper := base()
	upper.Attributes.Request.Http.Headers["X-Forwarded-Client-Cert"] = "spoofed"
	emptyAddr := base()
	emptyAddr.Attributes.Source.Address = &corev3.Address{}
	twice := mustMarshal(t, base())
	badUTF8 := mustMarshal(t, base())
	badUTF8[bytes.Index(badUTF8, []byte("user-agent"))+len("user-agent")+2] = 0xff // the value u
	for name, b := range map[string][]byte{
		"upper-case header name":                  mustMarshal(t, upper),
		"address without member":                  mustMarshal(t, emptyAddr),
		"attributes twice":                        append(twice, twice...),
		"invalid UTF-8 in a header no rule reads": badUTF8,
		"a fixed32 field":                         protowire.AppendTag(nil, 1, protowire.Fixed32Type),
	} {
		c := &decodedCheck{}
		if decodeView(append([]byte(nil), b...), c) {
			t.Errorf("%s: decoded", name)
		}
		if !reflect.DeepEqual(c, &decodedCheck{}) {
			t.Errorf("%s: declined but wrote to the check", name)
		}
	}

	// An empty socket address, and one whose port comes twice, decode.
	bare := base()
	bare.Attributes.Destination.Address = &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{}}}
	sa := protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 80)
	sa = protowire.AppendVarint(protowire.AppendTag(sa, 3, protowire.VarintType), 443)
	addr := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), sa)
	peer := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), addr)
	attrs := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), peer)
	for name, b := range map[string][]byte{
		"empty socket address": mustMarshal(t, bare),
		"port twice":           protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), attrs),
	} {
		if got, want, ok := decodeBoth(t, b); !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: decoded %v\n%+v\nwant\n%+v", name, ok, got, want)
		}
	}
}

// FuzzDecodeView: whatever the bytes, decodeView either declines or gives
// the view of protobuf-go's message.
func FuzzDecodeView(f *testing.F) {
	for _, req := range decodeCorpus() {
		b, _ := proto.Marshal(req)
		f.Add(b)
	}
	f.Add(protowire.AppendTag(nil, 1, protowire.Fixed32Type))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want, ok := decodeBoth(t, b); ok && !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded\n%+v\nprotobuf-go and readRequest\n%+v", got, want)
		}
	})
}

func mustMarshal(t testing.TB, req *authv3.CheckRequest) []byte {
	t.Helper()
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIsASCII: isASCII against utf8.RuneSelf, for every length up to two
// of its 32-byte steps and a word more, with every byte value at every
// place.
func TestIsASCII(t *testing.T) {
	for n := 1; n <= 72; n++ {
		b := bytes.Repeat([]byte{'a'}, n)
		for i := range b {
			for c := 0; c < 256; c++ {
				b[i] = byte(c)
				if isASCII(b) != (c < utf8.RuneSelf) {
					t.Fatalf("isASCII(%q) = %v", b, !(c < utf8.RuneSelf))
				}
			}
			b[i] = 'a'
		}
	}
	if !isASCII(nil) {
		t.Error("no bytes are not ASCII")
	}
}

// TestHasUpper: hasUpper against a byte loop, for every length up to three
// words with every ASCII byte at every place.
func TestHasUpper(t *testing.T) {
	for n := 1; n <= 24; n++ {
		b := bytes.Repeat([]byte{'a'}, n)
		for i := range b {
			for c := 0; c < utf8.RuneSelf; c++ {
				b[i] = byte(c)
				if got, want := hasUpper(string(b)), c >= 'A' && c <= 'Z'; got != want {
					t.Fatalf("hasUpper(%q) = %v", b, got)
				}
			}
			b[i] = 'a'
		}
	}
}

// TestDecodeViewLengths: every length of a header value across the one-,
// two- and three-byte lengths of the value and of the messages around it,
// ASCII and not, decodes to protobuf-go's view.
func TestDecodeViewLengths(t *testing.T) {
	lengths := []int{}
	for n := 0; n <= 600; n++ {
		lengths = append(lengths, n)
	}
	for n := 16_000; n <= 16_500; n += 7 {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		for _, fill := range []string{"a", "é"} {
			tok := string(bytes.Repeat([]byte(fill), n/len(fill)+1))[:n/len(fill)*len(fill)]
			got, want, ok := decodeBoth(t, mustMarshal(t, bench.BearerCheck(tok, n)))
			if !ok {
				t.Fatalf("value of %d bytes of %q: declined", n, fill)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("value of %d bytes of %q: decoded\n%+v\nwant\n%+v", n, fill, got, want)
			}
		}
		// Envoy's entries up to 16 KiB take headerEntry's short way.
		tok := string(bytes.Repeat([]byte("a"), n))
		e := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "authorization")
		e = protowire.AppendString(protowire.AppendTag(e, 2, protowire.BytesType), tok)
		if k, v, ok := headerEntry(e); (n < 1<<14) != ok || ok && (k != "authorization" || v != tok) {
			t.Fatalf("headerEntry of a %d-byte value: %v", n, ok)
		}
	}
}
