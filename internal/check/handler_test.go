package check

import (
	"context"
	"errors"
	"net"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/extauthz/extauthz/bench"
)

// ServeCheck serves on 127.0.0.1:0, with ServerCodec and opts, what
// register registers, and returns a client connection. Exported from a
// test file so the package's external tests (the harness) share it.
func ServeCheck(t *testing.T, register func(grpc.ServiceRegistrar), opts ...grpc.ServerOption) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(append([]grpc.ServerOption{ServerCodec()}, opts...)...)
	register(gs)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	t.Cleanup(func() {
		gs.Stop()
		// A Stop before Serve got going makes Serve return
		// ErrServerStopped: a test that never calls the server is that
		// quick at times.
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("grpc Serve: %v", err)
		}
	})
	conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// wireCodec sends a request's bytes as they are, so a test can send what
// protobuf-go would not marshal.
type wireCodec struct{}

func (wireCodec) Name() string { return "proto" }

func (wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (wireCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

func invokeWire(conn *grpc.ClientConn, wire []byte, resp *authv3.CheckResponse) error {
	return conn.Invoke(context.Background(), authv3.Authorization_Check_FullMethodName, wire, resp, grpc.ForceCodecV2(wireCodec{}))
}

// TestRegister: over real gRPC, Register's handler (the view decode and the
// direct encoding) answers every request as the generated registration of
// the same Server does — requests it decodes as a view, and those it hands
// to protobuf-go (header_map, an upper-case header name, metadata, invalid
// UTF-8) — and an interceptor is given the message.
func TestRegister(t *testing.T) {
	tok, srv := benchEnvFor(t).bearer(t)
	ours := ServeCheck(t, srv.Register)
	generated := ServeCheck(t, func(gs grpc.ServiceRegistrar) { authv3.RegisterAuthorizationServer(gs, srv) })

	headerMap := bench.BearerCheck(tok, 2)
	h := headerMap.Attributes.Request.Http
	h.HeaderMap = &corev3.HeaderMap{}
	for k, v := range h.Headers {
		h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
	}
	h.Headers = nil
	upper := bench.BearerCheck(tok, 3)
	upper.Attributes.Request.Http.Headers["X-Client-Id"] = "spoofed"
	pipe := bench.BearerCheck(tok, 4)
	pipe.Attributes.Source.Address = &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/p"}}}
	noToken := bench.BearerCheck(tok, 5)
	delete(noToken.Attributes.Request.Http.Headers, "authorization")
	badToken := bench.BearerCheck(tok[:len(tok)-2], 6)
	badUTF8 := bench.BearerCheck(tok, 7)
	badUTF8.Attributes.Request.Http.Path = "/api/v1/x"

	cases := map[string]*authv3.CheckRequest{
		"bearer": bench.BearerCheck(tok, 1), "header_map": headerMap, "upper-case name": upper,
		"pipe address": pipe, "no token": noToken, "bad signature": badToken, "invalid UTF-8": badUTF8,
	}
	for name, req := range cases {
		wire := marshal(t, req)
		if name == "invalid UTF-8" {
			// protobuf-go will not marshal it; Envoy sends it.
			wire = patch(t, wire, "/api/v1/x", "/api/v1/\xff")
		}
		var got, want authv3.CheckResponse
		if err := invokeWire(ours, wire, &got); err != nil {
			t.Fatalf("%s: Register: %v", name, err)
		}
		if err := invokeWire(generated, wire, &want); err != nil {
			t.Fatalf("%s: generated: %v", name, err)
		}
		if !proto.Equal(&got, &want) {
			t.Errorf("%s: Register answered\n%v\nthe generated registration\n%v", name, &got, &want)
		}
		if name == "bearer" && got.GetStatus().GetCode() != 0 {
			t.Errorf("bearer: denied: %v", &got)
		}
		if name == "invalid UTF-8" && got.GetDeniedResponse().GetStatus().GetCode() != 400 {
			t.Errorf("invalid UTF-8: %v, want a 400", &got)
		}
	}

	var seen any
	intercepted := ServeCheck(t, srv.Register, grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		seen = req
		if info.FullMethod != authv3.Authorization_Check_FullMethodName {
			t.Errorf("FullMethod %q", info.FullMethod)
		}
		return next(ctx, req)
	}))
	resp, err := authv3.NewAuthorizationClient(intercepted).Check(context.Background(), bench.BearerCheck(tok, 8))
	if err != nil || resp.GetStatus().GetCode() != 0 {
		t.Fatalf("with an interceptor: %v %v", err, resp)
	}
	if _, ok := seen.(*authv3.CheckRequest); !ok {
		t.Errorf("the interceptor was given a %T, want the CheckRequest", seen)
	}
}
