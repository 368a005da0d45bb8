package check

import (
	"context"
	"sync"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
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
	c := decodedChecks.Get().(*decodedCheck)
	if err := dec(c); err != nil {
		c.release()
		return nil, err
	}
	resp, err := s.checkDecoded(ctx, c)
	if err != nil {
		return nil, err // a recovered panic: c is left to the collector
	}
	bp := responseBufs.Get(responseBufSize)
	if b, ok := encodeCheckResponse((*bp)[:0], resp, &sharedMemos); ok {
		// An append past the buffer's capacity moved b to a larger array,
		// which the pool drops when gRPC frees it.
		*bp = b
		c.release()
		return (*encodedResponse)(bp), nil
	}
	responseBufs.Put(bp)
	// The response may point into c's scratch, so c stays the response's
	// and gRPC's codec encodes it.
	return resp, nil
}

// decodedChecks hold the memory of finished Checks for the next ones: a
// Check's 2.7 KB, allocated and zeroed fresh for every Check, cost a cached
// Check 5–6% of its server CPU (extauthz-bench ab), mostly in cache misses.
// A Check's memory is released only once its response is encoded: nothing
// keeps a pointer into it after that (the strings a Check hands on point
// into the request's bytes or the token's decoded payload, which are never
// reused), and it is zeroed before it is handed out again.
var decodedChecks = sync.Pool{New: func() any { return new(decodedCheck) }}

func (c *decodedCheck) release() {
	*c = decodedCheck{}
	decodedChecks.Put(c)
}

// encodedResponse is a response Register's handler encoded into a buffer
// of responseBufs: the codec hands it to gRPC, which frees it back to the
// pool once the transport has written it, so a Check's response costs no
// allocation. Nothing else keeps the bytes: they are all copied from the
// response, and the response from the Check's memory.
type encodedResponse []byte

// responseBufs hold responses' bytes. A buffer is larger than gRPC's
// pooling threshold (1 KiB), below which gRPC never gives a buffer back to
// its pool, and holds an allow's response with room to spare.
var responseBufs mem.BufferPool = &responsePool{p: sync.Pool{New: func() any {
	b := make([]byte, responseBufSize)
	return &b
}}}

const responseBufSize = 2 << 10

// responsePool is a mem.BufferPool of responseBufSize buffers. Unlike
// gRPC's pools it does not clear a buffer it takes back: the encoder
// writes every byte of a response before gRPC reads it.
type responsePool struct{ p sync.Pool }

func (p *responsePool) Get(n int) *[]byte {
	if n > responseBufSize {
		b := make([]byte, n)
		return &b
	}
	b := p.p.Get().(*[]byte)
	*b = (*b)[:n]
	return b
}

func (p *responsePool) Put(b *[]byte) {
	if cap(*b) == responseBufSize {
		p.p.Put(b)
	}
}
