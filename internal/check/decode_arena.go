package check

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// decodeArena holds the messages of the CheckRequest Envoy sends (the
// attributes, both peers with their socket addresses, the request, its
// time and its HTTP part) so decodeCheckRequest allocates them at once
// instead of one by one. A message the request has twice where it may
// (none today: the decoder refuses a repeated singular message) or one the
// arena has no room for is allocated on its own.
type decodeArena struct {
	attrs   authv3.AttributeContext
	peers   [2]authv3.AttributeContext_Peer
	addrs   [2]corev3.Address
	sockets [2]corev3.SocketAddress
	oneofs  [2]corev3.Address_SocketAddress
	ports   [2]corev3.SocketAddress_PortValue
	req     authv3.AttributeContext_Request
	time    timestamppb.Timestamp
	http    authv3.AttributeContext_HttpRequest

	attrsUsed, reqUsed, timeUsed, httpUsed bool
	peersUsed, addrsUsed, portsUsed        int
}

func (a *decodeArena) attributes() *authv3.AttributeContext {
	if a.attrsUsed {
		return &authv3.AttributeContext{}
	}
	a.attrsUsed = true
	return &a.attrs
}

func (a *decodeArena) peer() *authv3.AttributeContext_Peer {
	if a.peersUsed == len(a.peers) {
		return &authv3.AttributeContext_Peer{}
	}
	a.peersUsed++
	return &a.peers[a.peersUsed-1]
}

// socketAddress is an Address holding a new SocketAddress.
func (a *decodeArena) socketAddress() (*corev3.Address, *corev3.SocketAddress) {
	if a.addrsUsed == len(a.addrs) {
		sa := &corev3.SocketAddress{}
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: sa}}, sa
	}
	i := a.addrsUsed
	a.addrsUsed++
	a.oneofs[i].SocketAddress = &a.sockets[i]
	a.addrs[i].Address = &a.oneofs[i]
	return &a.addrs[i], &a.sockets[i]
}

func (a *decodeArena) portValue(v uint32) *corev3.SocketAddress_PortValue {
	if a.portsUsed == len(a.ports) {
		return &corev3.SocketAddress_PortValue{PortValue: v}
	}
	p := &a.ports[a.portsUsed]
	a.portsUsed++
	p.PortValue = v
	return p
}

func (a *decodeArena) request() *authv3.AttributeContext_Request {
	if a.reqUsed {
		return &authv3.AttributeContext_Request{}
	}
	a.reqUsed = true
	return &a.req
}

func (a *decodeArena) timestamp() *timestamppb.Timestamp {
	if a.timeUsed {
		return &timestamppb.Timestamp{}
	}
	a.timeUsed = true
	return &a.time
}

func (a *decodeArena) httpRequest() *authv3.AttributeContext_HttpRequest {
	if a.httpUsed {
		return &authv3.AttributeContext_HttpRequest{}
	}
	a.httpUsed = true
	return &a.http
}
