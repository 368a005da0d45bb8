package check

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/extauthz/extauthz/internal/policy"
)

// placeholder marks, in a request marshalled from valid strings, the bytes
// a test overwrites with invalidUTF8 (the same length, so no length prefix
// changes); sanitised is what the codec makes of them.
const (
	placeholder = "<<BAD>>!"
	invalidUTF8 = "caf\xe9\xff\xfe!!"
	sanitised   = "caf\x1a\x1a\x1a!!"
)

// envoyRequest is a CheckRequest shaped like Envoy's, with s in the place
// set picks (s may be "" for none).
func envoyRequest(set func(r *authv3.CheckRequest, s string), s string) *authv3.CheckRequest {
	lua, _ := structpb.NewStruct(map[string]any{"tenant": "acme", "tags": []any{"a", map[string]any{"k": "v"}}})
	r := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Principal: "spiffe://example.org/ns/a/sa/b"},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "1234", Method: "GET", Host: "api.example.com", Path: "/api/reports?year=2030", Scheme: "https", Protocol: "HTTP/2",
			Headers: map[string]string{
				":authority": "api.example.com", ":method": "GET", ":path": "/api/reports?year=2030", ":scheme": "https",
				"authorization": "Bearer eyJhbGciOiJFZERTQSJ9.e30.c2ln", "user-agent": "curl/8.0", "x-request-id": "req-1",
			},
			Body: "", RawBody: []byte("\xff raw bytes are bytes"),
		}},
		ContextExtensions: map[string]string{"rule": "reports-api"},
		MetadataContext:   &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.filters.http.lua": lua}},
		TlsSession:        &authv3.AttributeContext_TLSSession{Sni: "api.example.com"},
	}}
	if set != nil {
		set(r, s)
	}
	return r
}

func httpOf(r *authv3.CheckRequest) *authv3.AttributeContext_HttpRequest {
	return r.Attributes.Request.Http
}

// placements are the string fields invalid UTF-8 arrives in.
var placements = []struct {
	name string
	set  func(r *authv3.CheckRequest, s string)
}{
	{"header value", func(r *authv3.CheckRequest, s string) { httpOf(r).Headers["x-note"] = s }},
	{"authorization value", func(r *authv3.CheckRequest, s string) { httpOf(r).Headers["authorization"] = "Bearer " + s }},
	{"header name", func(r *authv3.CheckRequest, s string) { httpOf(r).Headers["x-"+s] = "v" }},
	{"path", func(r *authv3.CheckRequest, s string) {
		httpOf(r).Path = "/api/" + s
		httpOf(r).Headers[":path"] = "/api/" + s
	}},
	{"host", func(r *authv3.CheckRequest, s string) { httpOf(r).Host = s + ".example.com" }},
	{"body", func(r *authv3.CheckRequest, s string) {
		httpOf(r).RawBody = nil
		httpOf(r).Body = "grant_type=client_credentials&name=" + s
	}},
	{"header_map name", func(r *authv3.CheckRequest, s string) {
		httpOf(r).HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: "x-" + s, RawValue: []byte("v")}}}
	}},
	{"header_map value", func(r *authv3.CheckRequest, s string) {
		httpOf(r).HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: "x-note", Value: s}}}
	}},
	{"metadata deep in a struct", func(r *authv3.CheckRequest, s string) {
		v, _ := structpb.NewStruct(map[string]any{"a": []any{map[string]any{"b": []any{s}}}})
		r.Attributes.MetadataContext.FilterMetadata["envoy.filters.http.lua"].Fields["deep"] = structpb.NewStructValue(v)
	}},
	{"metadata key", func(r *authv3.CheckRequest, s string) {
		r.Attributes.MetadataContext.FilterMetadata[s] = &structpb.Struct{}
	}},
	{"context extension", func(r *authv3.CheckRequest, s string) { r.Attributes.ContextExtensions["hint"] = s }},
	{"peer certificate", func(r *authv3.CheckRequest, s string) { r.Attributes.Source.Certificate = s }},
	{"tls sni", func(r *authv3.CheckRequest, s string) { r.Attributes.TlsSession.Sni = s }},
	{"header value and body", func(r *authv3.CheckRequest, s string) {
		httpOf(r).Headers["x-note"] = s
		httpOf(r).Body = s
	}},
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// patch returns b with every old replaced by new, of the same length.
func patch(t testing.TB, b []byte, old, new string) []byte {
	t.Helper()
	if len(old) != len(new) || !bytes.Contains(b, []byte(old)) {
		t.Fatalf("cannot patch %q into %q", old, new)
	}
	return bytes.ReplaceAll(b, []byte(old), []byte(new))
}

func serverCodec() codec { return codec{base: encoding.GetCodecV2(grpcproto.Name)} }

func decode(wire []byte, v any) error {
	return serverCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(bytes.Clone(wire))}, v)
}

func marked(r *authv3.CheckRequest) bool {
	_, ok := r.GetAttributes().GetContextExtensions()[undecodableKey]
	return ok
}

// TestCodecInvalidUTF8 sends invalid UTF-8 in every string field Envoy
// fills: gRPC's own codec refuses each request, ours decodes it with the
// bad bytes replaced one for one, every other byte as it came, and the
// request marked.
func TestCodecInvalidUTF8(t *testing.T) {
	for _, p := range placements {
		t.Run(p.name, func(t *testing.T) {
			valid := marshal(t, envoyRequest(p.set, placeholder))
			wire := patch(t, valid, placeholder, invalidUTF8)
			if err := proto.Unmarshal(wire, &authv3.CheckRequest{}); err == nil {
				t.Fatal("proto.Unmarshal took the invalid UTF-8; the test proves nothing")
			}
			var got authv3.CheckRequest
			if err := decode(wire, &got); err != nil {
				t.Fatalf("codec: %v", err)
			}
			if !marked(&got) {
				t.Error("the request is not marked undecodable")
			}
			want := envoyRequest(p.set, sanitised)
			markUndecodable(want)
			if !proto.Equal(&got, want) {
				t.Errorf("decoded\n%v\nwant\n%v", &got, want)
			}

			// In place: only the invalid bytes changed.
			b := bytes.Clone(wire)
			replaced, err := sanitiseUTF8(b, (&authv3.CheckRequest{}).ProtoReflect().Descriptor(), maxSanitiseDepth)
			if err != nil || !replaced {
				t.Fatalf("sanitiseUTF8 = %v, %v", replaced, err)
			}
			if want := patch(t, valid, placeholder, sanitised); !bytes.Equal(b, want) {
				t.Errorf("sanitised bytes differ from the input beyond the invalid bytes")
			}
		})
	}
}

func TestReplaceInvalidUTF8(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain ascii", "plain ascii"},
		{"caf\u00e9 \u20ac \U0001f600", "caf\u00e9 \u20ac \U0001f600"},
		{"\ufffd is valid", "\ufffd is valid"},
		{"lone \xff", "lone \x1a"},
		{"latin-1 caf\xe9", "latin-1 caf\x1a"},
		{"truncated \xe2\x82", "truncated \x1a\x1a"},
		{"truncated at the end \xf0\x9f\x98", "truncated at the end \x1a\x1a\x1a"},
		{"overlong \xc0\xaf", "overlong \x1a\x1a"},
		{"surrogate \xed\xa0\x80", "surrogate \x1a\x1a\x1a"},
		{"beyond U+10FFFF \xf4\x90\x80\x80", "beyond U+10FFFF \x1a\x1a\x1a\x1a"},
		{"continuation \x80\xbf", "continuation \x1a\x1a"},
		{"\xe9\u00e9\xe9", "\x1a\u00e9\x1a"},
	} {
		b := []byte(c.in)
		changed := replaceInvalidUTF8(b)
		if string(b) != c.want || changed != (c.in != c.want) {
			t.Errorf("replaceInvalidUTF8(%q) = %v, %q; want %q", c.in, changed, b, c.want)
		}
	}
}

// TestCodecValidUntouched decodes valid requests exactly as gRPC's codec
// does: same message, no mark, and the sanitiser changes no byte of them,
// nor of bytes fields and unknown fields, which are not UTF-8 checked.
func TestCodecValidUntouched(t *testing.T) {
	unknown := protowire.AppendTag(nil, 999, protowire.BytesType)
	unknown = protowire.AppendBytes(unknown, []byte("\xff\xfe not a string"))
	unknown = protowire.AppendTag(unknown, 998, protowire.VarintType)
	unknown = protowire.AppendVarint(unknown, 7)
	requests := map[string][]byte{
		"empty": nil,
		"bare":  marshal(t, envoyRequest(nil, "")),
		// raw_body and header_map raw_value are bytes: anything goes.
		"invalid UTF-8 in bytes fields": marshal(t, envoyRequest(func(r *authv3.CheckRequest, s string) {
			httpOf(r).RawBody = []byte("a=\xff\xfe")
			httpOf(r).HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: "x-note", RawValue: []byte("caf\xe9")}}}
		}, "")),
		"unknown fields": append(marshal(t, envoyRequest(nil, "")), unknown...),
		// A message field sent as a varint is an unknown field to the
		// decoder, and so to the sanitiser.
		"unexpected wire type": append(marshal(t, envoyRequest(nil, "")), 0x08, 1), // attributes (1) as a varint
	}
	for _, p := range placements {
		requests[p.name] = marshal(t, envoyRequest(p.set, "caf\u00e9 \ufffd ok"))
	}
	for name, wire := range requests {
		t.Run(name, func(t *testing.T) {
			var want authv3.CheckRequest
			if err := proto.Unmarshal(wire, &want); err != nil {
				t.Fatalf("proto.Unmarshal: %v", err)
			}
			var got authv3.CheckRequest
			if err := decode(wire, &got); err != nil {
				t.Fatalf("codec: %v", err)
			}
			if marked(&got) || !proto.Equal(&got, &want) {
				t.Errorf("codec decoded %v, want %v", &got, &want)
			}
			b := bytes.Clone(wire)
			if replaced, err := sanitiseUTF8(b, want.ProtoReflect().Descriptor(), maxSanitiseDepth); replaced || err != nil || !bytes.Equal(b, wire) {
				t.Errorf("sanitiseUTF8 = %v, %v; bytes unchanged: %v", replaced, err, bytes.Equal(b, wire))
			}
		})
	}
	t.Run("unknown fields beside invalid UTF-8", func(t *testing.T) {
		set := placements[0].set
		wire := append(patch(t, marshal(t, envoyRequest(set, placeholder)), placeholder, invalidUTF8), unknown...)
		var got authv3.CheckRequest
		if err := decode(wire, &got); err != nil {
			t.Fatalf("codec: %v", err)
		}
		if !marked(&got) || !bytes.Equal(got.ProtoReflect().GetUnknown(), unknown) {
			t.Errorf("marked %v, unknown fields %q, want %q", marked(&got), got.ProtoReflect().GetUnknown(), unknown)
		}
	})
}

// TestCodecBroken keeps gRPC's error for a message broken beyond its
// UTF-8, and for any message but a CheckRequest.
func TestCodecBroken(t *testing.T) {
	bad := patch(t, marshal(t, envoyRequest(placements[0].set, placeholder)), placeholder, invalidUTF8)
	health := patch(t, marshal(t, &healthpb.HealthCheckRequest{Service: placeholder}), placeholder, invalidUTF8)
	for _, c := range []struct {
		name string
		wire []byte
		msg  func() proto.Message
	}{
		{"truncated", bad[:len(bad)-1], func() proto.Message { return &authv3.CheckRequest{} }},
		{"trailing garbage", append(bytes.Clone(bad), 0xff), func() proto.Message { return &authv3.CheckRequest{} }},
		{"stray end group", append(bytes.Clone(bad), 0x0c), func() proto.Message { return &authv3.CheckRequest{} }},
		{"garbage only", []byte("\xff\xff\xff\xff"), func() proto.Message { return &authv3.CheckRequest{} }},
		{"valid UTF-8, truncated", marshal(t, envoyRequest(nil, ""))[:40], func() proto.Message { return &authv3.CheckRequest{} }},
		{"not a CheckRequest", health, func() proto.Message { return &healthpb.HealthCheckRequest{} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantErr := encoding.GetCodecV2(grpcproto.Name).Unmarshal(mem.BufferSlice{mem.SliceBuffer(bytes.Clone(c.wire))}, c.msg())
			if wantErr == nil {
				t.Fatal("gRPC's codec decodes it; the test proves nothing")
			}
			err := decode(c.wire, c.msg())
			if err == nil || err.Error() != wantErr.Error() {
				t.Errorf("codec error = %v, want gRPC's %v", err, wantErr)
			}
		})
	}
}

// deepRequest is a CheckRequest whose metadata nests links list values
// (a Value in a ListValue in a Value ...) around a string_value of s, and
// the number of messages the sanitiser enters to reach s. It is written
// outside in, so a deep one costs no more than its size.
func deepRequest(links int, s string) (wire []byte, depth int) {
	// Outside in: CheckRequest.attributes, AttributeContext.metadata_context,
	// Metadata.filter_metadata (an entry), the entry's value (a Struct),
	// Struct.fields (an entry), its value (a Value), then the links:
	// Value.list_value, ListValue.values.
	levels := []protowire.Number{1, 11, 1, 2, 1, 2}
	for range links {
		levels = append(levels, 6, 1)
	}
	// The innermost Value: string_value (3) = s; entries' keys are "".
	inner := protowire.AppendString(protowire.AppendTag(nil, 3, protowire.BytesType), s)
	sizes := make([]int, len(levels)) // sizes[i]: the content of the message levels[i] opens
	size := len(inner)
	for i := len(levels) - 1; i >= 0; i-- {
		sizes[i] = size
		size = protowire.SizeTag(levels[i]) + protowire.SizeBytes(sizes[i])
	}
	wire = make([]byte, 0, size)
	for i, num := range levels {
		wire = protowire.AppendTag(wire, num, protowire.BytesType)
		wire = protowire.AppendVarint(wire, uint64(sizes[i]))
	}
	return append(wire, inner...), len(levels)
}

func TestSanitiseDepth(t *testing.T) {
	md := (&authv3.CheckRequest{}).ProtoReflect().Descriptor()
	wire, depth := deepRequest(5, invalidUTF8)
	if err := proto.Unmarshal(wire, &authv3.CheckRequest{}); err == nil {
		t.Fatal("proto.Unmarshal took the invalid UTF-8")
	}
	if replaced, err := sanitiseUTF8(bytes.Clone(wire), md, depth); !replaced || err != nil {
		t.Errorf("at its depth (%d): %v, %v", depth, replaced, err)
	}
	if _, err := sanitiseUTF8(bytes.Clone(wire), md, depth-1); err != errSanitiseDepth {
		t.Errorf("one level short: %v, want %v", err, errSanitiseDepth)
	}

	// Deep, but within protobuf's own limit: a decision.
	wire, depth = deepRequest(2000, invalidUTF8)
	var got authv3.CheckRequest
	if err := decode(wire, &got); err != nil || !marked(&got) {
		t.Errorf("%d levels: codec %v, marked %v", depth, err, marked(&got))
	}
	// Deeper than the decoder would take even as valid UTF-8: the sanitiser
	// stops at its bound and the decoder's error stands.
	valid, depth := deepRequest(maxSanitiseDepth/2, "ok")
	if err := proto.Unmarshal(valid, &authv3.CheckRequest{}); err == nil {
		t.Fatalf("proto.Unmarshal took %d levels; the bound is not protobuf's", depth)
	}
	wire, _ = deepRequest(maxSanitiseDepth/2, invalidUTF8)
	if _, err := sanitiseUTF8(bytes.Clone(wire), md, maxSanitiseDepth); err != errSanitiseDepth {
		t.Errorf("%d levels: sanitiseUTF8 %v, want %v", depth, err, errSanitiseDepth)
	}
	if err := decode(wire, &authv3.CheckRequest{}); err == nil {
		t.Errorf("%d levels: the codec decoded it", depth)
	}
}

func TestCodecDelegates(t *testing.T) {
	c, base := serverCodec(), encoding.GetCodecV2(grpcproto.Name)
	if c.Name() != "proto" {
		t.Errorf("Name = %q", c.Name())
	}
	// A message is encoded by gRPC's codec, a response Register's handler
	// encoded is handed over as it is.
	resp := &authv3.CheckResponse{DynamicMetadata: &structpb.Struct{Fields: map[string]*structpb.Value{"reason": structpb.NewStringValue("x")}}}
	want, _ := base.Marshal(resp)
	got, err := c.Marshal(resp)
	if err != nil || !bytes.Equal(got.Materialize(), want.Materialize()) {
		t.Errorf("Marshal of the message = %x, %v; want gRPC's %x", got.Materialize(), err, want.Materialize())
	}
	e := encodedResponse("encoded")
	if got, err := c.Marshal(&e); err != nil || string(got.Materialize()) != "encoded" {
		t.Errorf("Marshal of an encoded response = %q, %v", got.Materialize(), err)
	}
}

// TestCheckUndecodable checks the decision of a marked request: the 400
// invalid_request of any malformed request, before any rule (this one
// would be a public allow), in the metrics and the decision log.
func TestCheckUndecodable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.yaml")
	doc := "version: v1\nrules:\n  - name: health\n    match: {paths: [/healthz]}\nstrip_headers: [x-user]\ndefault_action: deny\n"
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	snap, err := policy.Load([]string{file}, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	cfg := Config{
		Policy: policy.NewStore(snap), Metrics: NewMetrics(reg),
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	}
	healthz := func(s string) *authv3.CheckRequest {
		return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "1", Method: "GET", Host: "api.example.com", Path: "/healthz",
			Headers: map[string]string{"x-request-id": "req-1", "x-note": s},
		}}}}
	}
	srv := New(cfg)
	if resp, _ := srv.Check(context.Background(), healthz("fine")); resp.GetOkResponse() == nil {
		t.Fatalf("the unmarked request is not allowed: %v", resp)
	}
	req := healthz(sanitised)
	markUndecodable(req)
	resp, err := srv.Check(context.Background(), req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	d := resp.GetDeniedResponse()
	headers := map[string]string{}
	for _, h := range d.GetHeaders() {
		headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	meta := resp.GetDynamicMetadata().GetFields()
	if resp.GetStatus().GetCode() != 7 || d.GetStatus().GetCode() != 400 || d.GetBody() != `{"error":"invalid_request"}` ||
		len(headers) != 2 || headers["content-type"] != "application/json" || headers["cache-control"] != "no-store" ||
		meta["decision"].GetStringValue() != "deny" || meta["reason"].GetStringValue() != ReasonUndecodable || meta["rule"].GetStringValue() != "" {
		t.Errorf("got %v", resp)
	}
	if got := decisionCount(t, reg, "deny", ReasonUndecodable); got != 1 {
		t.Errorf("extauthz_decisions_total{decision=deny,reason=%s} = %v, want 1", ReasonUndecodable, got)
	}
	var line map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(l, ReasonUndecodable) {
			json.Unmarshal([]byte(l), &line)
		}
	}
	if line["decision"] != "deny" || line["status"] != 400.0 || line["path"] != "/healthz" || line["request_id"] != "req-1" {
		t.Errorf("decision log line %v\nlog:\n%s", line, logs.String())
	}

	// Explain says why.
	_, steps := srv.Explain(context.Background(), req)
	if len(steps) == 0 || steps[0].Check != "decode" || steps[0].OK {
		t.Errorf("Explain steps %+v", steps)
	}

	// --audit allows every would-be deny, this one too, and says so.
	cfg.Audit, cfg.Metrics = true, nil
	resp, _ = New(cfg).Check(context.Background(), req)
	meta = resp.GetDynamicMetadata().GetFields()
	if resp.GetOkResponse() == nil || meta["audit_decision"].GetStringValue() != "deny" || meta["reason"].GetStringValue() != ReasonUndecodable {
		t.Errorf("audit: %v", resp)
	}
}

func decisionCount(t *testing.T, reg *prometheus.Registry, decision, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "extauthz_decisions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["decision"] == decision && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// BenchmarkCodecUnmarshal decodes an Envoy-shaped CheckRequest with gRPC's
// codec and with ours: the valid path must cost the same.
func BenchmarkCodecUnmarshal(b *testing.B) {
	wire := marshal(b, envoyRequest(placements[0].set, "a header value"))
	for _, c := range []struct {
		name  string
		codec encoding.CodecV2
	}{{"grpc", encoding.GetCodecV2(grpcproto.Name)}, {"extauthz", serverCodec()}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var req authv3.CheckRequest
				if err := c.codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, &req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("extauthz-invalid-utf8", func(b *testing.B) {
		bad := patch(b, marshal(b, envoyRequest(placements[0].set, placeholder)), placeholder, invalidUTF8)
		c := serverCodec()
		b.ReportAllocs()
		for b.Loop() {
			var req authv3.CheckRequest
			if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(bad)}, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzCodec holds the codec to its contract on any bytes: what gRPC's codec
// decodes, it decodes the same and unmarked; what it alone decodes is
// marked; and it never decodes a message the sanitised bytes do not make.
func FuzzCodec(f *testing.F) {
	for _, p := range placements {
		valid := marshal(f, envoyRequest(p.set, placeholder))
		f.Add(valid)
		f.Add(patch(f, valid, placeholder, invalidUTF8))
	}
	wire, _ := deepRequest(3, invalidUTF8)
	f.Add(wire)
	f.Fuzz(func(t *testing.T, wire []byte) {
		var want, got authv3.CheckRequest
		protoErr := proto.Unmarshal(wire, &want)
		err := decode(wire, &got)
		switch {
		case protoErr == nil && (err != nil || !proto.Equal(&got, &want) || marked(&got) != marked(&want)):
			t.Fatalf("valid message decoded differently: %v", err)
		case protoErr != nil && err == nil && !marked(&got):
			t.Fatal("an undecodable message decoded unmarked")
		case protoErr != nil && err != nil && err.Error() != protoErr.Error():
			t.Fatalf("error %v, want gRPC's %v", err, protoErr)
		}
	})
}

// TestResponsePool: buffers of any length up to responseBufSize come from
// the pool, larger ones are made and never pooled, and gRPC's Free of a
// response the codec handed over puts its buffer back.
func TestResponsePool(t *testing.T) {
	p := responseBufs
	b := p.Get(10)
	if len(*b) != 10 || cap(*b) != responseBufSize {
		t.Fatalf("Get(10): len %d cap %d", len(*b), cap(*b))
	}
	big := p.Get(responseBufSize + 1)
	if len(*big) != responseBufSize+1 {
		t.Fatalf("Get(%d): len %d", responseBufSize+1, len(*big))
	}
	p.Put(big) // dropped: not a pool buffer

	e := (*encodedResponse)(p.Get(7))
	copy(*e, "encoded")
	out, err := serverCodec().Marshal(e)
	if err != nil || string(out.Materialize()) != "encoded" {
		t.Fatalf("Marshal = %q, %v", out.Materialize(), err)
	}
	if len(out) != 1 || out[0].Len() != 7 {
		t.Fatalf("BufferSlice %v", out)
	}
	out.Free()
	if n := testing.AllocsPerRun(100, func() { p.Put(p.Get(100)) }); n != 0 {
		t.Errorf("a pooled buffer allocates %.0f times", n)
	}
}
