package bench

import (
	"context"
	"fmt"
	"io"
	"net"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/extauthz/extauthz/internal/tuning"
)

// The no-op server is the floor: the cheapest ext_authz server there can
// be. It answers every Check OK with an empty OkHttpResponse, and decodes no
// more than gRPC must: its codec does not unmarshal the CheckRequest at all
// (gRPC has read the frame; nothing looks inside it) and writes a response
// marshalled once, at start. The same process serves BareMethod, an empty
// unary method taking and returning an empty message: the cost of a gRPC
// unary call on this machine, with nothing to decode or encode. Its
// collector is paced as extauthz's (internal/tuning), and it runs
// Checks on as many stream workers.

// BareMethod is the no-op server's empty unary method.
const BareMethod = "/extauthz.bench.Bare/Empty"

// okResponseBytes is the floor's answer, marshalled once.
var okResponseBytes = func() []byte {
	b, err := proto.Marshal(&authv3.CheckResponse{
		Status:       &status.Status{},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
	})
	if err != nil {
		panic(err)
	}
	return b
}()

// noopCodec decodes nothing and writes a fixed message: okResponseBytes for
// a Check, nothing for the bare method.
type noopCodec struct{}

// noopReq is what either method receives: nothing.
type noopReq struct{}

// noopResp is what either method returns; b is the wire form.
type noopResp struct{ b []byte }

var (
	checkOK = &noopResp{b: okResponseBytes}
	empty   = &noopResp{}
)

func (noopCodec) Name() string { return "proto" }

func (noopCodec) Marshal(v any) (mem.BufferSlice, error) {
	r, ok := v.(*noopResp)
	if !ok {
		return nil, fmt.Errorf("bench: noop codec cannot marshal %T", v)
	}
	if len(r.b) == 0 {
		return nil, nil
	}
	// A static buffer: gRPC writes it and never frees it back to a pool.
	return mem.BufferSlice{mem.SliceBuffer(r.b)}, nil
}

func (noopCodec) Unmarshal(_ mem.BufferSlice, v any) error {
	if _, ok := v.(*noopReq); !ok {
		return fmt.Errorf("bench: noop codec cannot unmarshal into %T", v)
	}
	return nil
}

// noopHandler is both methods' handler: it lets gRPC "decode" the request
// (the codec does nothing) and returns the fixed answer.
func noopHandler(resp *noopResp) grpc.MethodHandler {
	return func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		var req noopReq
		if err := dec(&req); err != nil {
			return nil, err
		}
		return resp, nil
	}
}

var noopServices = []grpc.ServiceDesc{
	{
		ServiceName: authv3.Authorization_ServiceDesc.ServiceName,
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Check", Handler: noopHandler(checkOK)}},
	},
	{
		ServiceName: "extauthz.bench.Bare",
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Empty", Handler: noopHandler(empty)}},
	},
}

// ServeNoop serves the no-op ext_authz server (and BareMethod) on addr
// (host:0 picks a port) until ctx ends, printing "serving <addr>" on out
// once it listens.
func ServeNoop(ctx context.Context, addr string, out io.Writer) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// The collector paced and Checks run on workers as extauthz's are:
	// what they save is saved in the floor too, not credited to extauthz.
	stopGC, _ := tuning.StartGCHeadroom(tuning.DefaultGCHeadroom)
	defer stopGC()
	gs := grpc.NewServer(grpc.ForceServerCodecV2(noopCodec{}), grpc.NumStreamWorkers(tuning.StreamWorkers))
	for i := range noopServices {
		gs.RegisterService(&noopServices[i], struct{}{})
	}
	fmt.Fprintf(out, "serving %s\n", l.Addr())
	go func() {
		<-ctx.Done()
		gs.Stop()
	}()
	return gs.Serve(l)
}
