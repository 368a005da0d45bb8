package check

import (
	"context"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
)

// Register makes s the Authorization service of gs, which must be built
// with ServerCodec. Its Check handler has the codec decode each
// CheckRequest straight into the view a Check reads (decodeView) instead
// of into the message, the cheapest decode there is. An interceptor is
// owed the message, and gets it.
func (s *Server) Register(gs grpc.ServiceRegistrar) {
	gs.RegisterService(&grpc.ServiceDesc{
		ServiceName: "envoy.service.auth.v3.Authorization",
		HandlerType: (*authv3.AuthorizationServer)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Check", Handler: checkHandler}},
		Metadata:    "envoy/service/auth/v3/external_auth.proto",
	}, s)
}

func checkHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	s := srv.(*Server)
	if interceptor != nil {
		req := &authv3.CheckRequest{}
		if err := dec(req); err != nil {
			return nil, err
		}
		info := &grpc.UnaryServerInfo{Server: srv, FullMethod: authv3.Authorization_Check_FullMethodName}
		return interceptor(ctx, req, info, func(ctx context.Context, req any) (any, error) {
			return s.Check(ctx, req.(*authv3.CheckRequest))
		})
	}
	c := &decodedCheck{}
	if err := dec(c); err != nil {
		return nil, err
	}
	resp, err := s.checkDecoded(ctx, c)
	if err != nil {
		return nil, err
	}
	return builtResponse{resp}, nil
}
