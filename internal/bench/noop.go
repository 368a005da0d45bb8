package bench

import (
	"context"
	"fmt"
	"io"
	"net"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
)

// noopServer allows every Check without looking at it: the floor, the cost
// of the gRPC round trip and of decoding an Envoy-shaped CheckRequest.
type noopServer struct {
	authv3.UnimplementedAuthorizationServer
}

var okResponse = &authv3.CheckResponse{
	Status:       &status.Status{},
	HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
}

func (noopServer) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return okResponse, nil
}

// ServeNoop serves the no-op ext_authz server on addr (host:0 picks a port)
// until ctx ends, printing "serving <addr>" on out once it listens.
func ServeNoop(ctx context.Context, addr string, out io.Writer) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, noopServer{})
	fmt.Fprintf(out, "serving %s\n", l.Addr())
	go func() {
		<-ctx.Done()
		gs.Stop()
	}()
	return gs.Serve(l)
}
