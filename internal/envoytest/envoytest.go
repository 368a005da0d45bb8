// Package envoytest builds CheckRequests shaped as Envoy's ext_authz filter
// sends them: pseudo-headers included; with the headers map, names
// lower-cased and repeats joined with ","; with header_map
// (encode_raw_headers), one entry per line with its raw value; the body as
// body or raw_body (pack_as_bytes); the peer certificate as the URL-encoded
// PEM of include_peer_certificate.
//
// It is a test helper: nothing but tests imports it.
package envoytest

import (
	"encoding/pem"
	"net/url"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// Request is the HTTP request Envoy describes in a CheckRequest.
type Request struct {
	// ID is the request's id.
	ID                 string
	Method, Host, Path string
	// Scheme is :scheme, "https" when empty.
	Scheme string
	// Headers in order, any case; a name may repeat.
	Headers [][2]string
	Body    string
	// HeaderMap sends header_map (encode_raw_headers: true) instead of
	// headers.
	HeaderMap bool
	// LowerMapNames lower-cases the names in header_map, as Envoy does;
	// without it they are sent as given, to see that the server does not
	// depend on it.
	LowerMapNames bool
	// RawBody sends raw_body (pack_as_bytes: true) instead of body.
	RawBody bool
	// ContextExtensions are the route's context_extensions.
	ContextExtensions map[string]string
	// Source is attributes.source; Certificate and Principal are set in it
	// (in a new one when it is nil).
	Source *authv3.AttributeContext_Peer
	// Certificate is Envoy's URL-encoded PEM of the client certificate
	// (see PEM), "" for a connection without one.
	Certificate string
	// Principal is source.principal, Envoy's name for the mTLS peer.
	Principal string
}

// With appends name/value pairs to headers, in a copy.
func With(headers [][2]string, kv ...string) [][2]string {
	headers = slices.Clone(headers)
	for i := 0; i+1 < len(kv); i += 2 {
		headers = append(headers, [2]string{kv[i], kv[i+1]})
	}
	return headers
}

// Proto builds the CheckRequest as Envoy does.
func (r Request) Proto() *authv3.CheckRequest {
	scheme := r.Scheme
	if scheme == "" {
		scheme = "https"
	}
	all := append([][2]string{
		{":authority", r.Host}, {":method", r.Method}, {":path", r.Path}, {":scheme", scheme},
	}, r.Headers...)
	h := &authv3.AttributeContext_HttpRequest{
		Id: r.ID, Method: r.Method, Host: r.Host, Path: r.Path, Scheme: scheme, Protocol: "HTTP/1.1",
	}
	if r.HeaderMap {
		h.HeaderMap = &corev3.HeaderMap{}
		for _, kv := range all {
			name := kv[0]
			if r.LowerMapNames {
				name = strings.ToLower(name)
			}
			h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: name, RawValue: []byte(kv[1])})
		}
	} else {
		h.Headers = map[string]string{}
		for _, kv := range all {
			k := strings.ToLower(kv[0])
			if old, ok := h.Headers[k]; ok {
				h.Headers[k] = old + "," + kv[1]
			} else {
				h.Headers[k] = kv[1]
			}
		}
	}
	if r.RawBody {
		h.RawBody = []byte(r.Body)
	} else {
		h.Body = r.Body
	}
	h.Size = int64(len(r.Body))
	source := r.Source
	if r.Certificate != "" || r.Principal != "" {
		if source == nil {
			source = &authv3.AttributeContext_Peer{}
		}
		source.Certificate, source.Principal = r.Certificate, r.Principal
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:            source,
		Request:           &authv3.AttributeContext_Request{Http: h},
		ContextExtensions: r.ContextExtensions,
	}}
}

// SocketPeer is a source peer at address:port, with no certificate.
func SocketPeer(address string, port uint32) *authv3.AttributeContext_Peer {
	return &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: address, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}}
}

// Encode percent-encodes a PEM text as Envoy's source.certificate does:
// newline, space, +, / and =, every character of PEM that is not
// unreserved.
var Encode = strings.NewReplacer("\n", "%0A", " ", "%20", "+", "%2B", "/", "%2F", "=", "%3D").Replace

// PEM is the certificates ders, in order, as Envoy forwards them with
// include_peer_certificate: PEM, URL-encoded.
func PEM(ders ...[]byte) string {
	var b strings.Builder
	for _, der := range ders {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	return Encode(b.String())
}

// Form encodes name/value pairs in order, repeats allowed, as a
// application/x-www-form-urlencoded body.
func Form(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(kv[i]) + "=" + url.QueryEscape(kv[i+1]))
	}
	return b.String()
}
