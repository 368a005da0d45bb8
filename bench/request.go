package bench

import (
	"fmt"
	"net/url"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The hosts, paths and claims every server's policy is written for (see
// bench/): an API behind a bearer token and a token endpoint behind a
// client assertion.
const (
	APIHost       = "api.bench.test"
	APIPath       = "/api/v1/items"
	Audience      = "api.bench.test"
	Scope         = "read"
	Issuer        = "https://idp.bench.test"
	LoginHost     = "login.bench.test"
	TokenPath     = "/oauth/token"
	TokenEndpoint = "https://login.bench.test/oauth/token"
	ClientID      = "bench-client"
	assertionURN  = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// envoyRequest is the CheckRequest Envoy sends for one HTTP request: the
// peer addresses, the request time, and the HTTP attributes with the
// headers a browser or service client and Envoy itself put there. The
// addresses are only data in the message (every byte of traffic stays on
// loopback).
func envoyRequest(method, host, path string, headers map[string]string, body string, seq int) *authv3.CheckRequest {
	h := map[string]string{
		":authority":                     host,
		":method":                        method,
		":path":                          path,
		":scheme":                        "https",
		"accept":                         "application/json",
		"accept-encoding":                "gzip, deflate, br",
		"user-agent":                     "bench-client/1.0 (+https://example.com/bench)",
		"x-forwarded-proto":              "https",
		"x-forwarded-for":                "127.0.0.10",
		"x-envoy-expected-rq-timeout-ms": "15000",
		"x-request-id":                   fmt.Sprintf("6f1c2a4e-%04x-4c3b-9d2e-%012x", seq&0xffff, seq),
		"traceparent":                    fmt.Sprintf("00-%032x-%016x-01", seq+1, seq+1),
	}
	for k, v := range headers {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "127.0.0.10", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 50000 + uint32(seq%10000)}},
		}}},
		Destination: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8443}},
		}}},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.Now(),
			Http: &authv3.AttributeContext_HttpRequest{
				Id:       fmt.Sprint(1_000_000_000 + seq),
				Method:   method,
				Headers:  h,
				Path:     path,
				Host:     host,
				Scheme:   "https",
				Protocol: "HTTP/2",
				Size:     int64(len(body)),
				Body:     body,
			},
		},
	}}
}

// BearerCheck is Envoy's Check of GET APIPath with the bearer token; seq
// varies the request id and trace headers.
func BearerCheck(token string, seq int) *authv3.CheckRequest {
	return envoyRequest("GET", APIHost, APIPath+"?limit=10", map[string]string{
		"authorization": "Bearer " + token,
	}, "", seq)
}

// BearerRequest is BearerCheck marshalled.
func BearerRequest(token string, seq int) []byte { return marshal(BearerCheck(token, seq)) }

// AssertionCheck is Envoy's Check of a client_credentials token request
// authenticated by the client assertion, its form body buffered by Envoy
// (with_request_body).
func AssertionCheck(assertion string, seq int) *authv3.CheckRequest {
	body := url.Values{
		"grant_type":            {"client_credentials"},
		"scope":                 {"read"},
		"client_assertion_type": {assertionURN},
		"client_assertion":      {assertion},
	}.Encode()
	return envoyRequest("POST", LoginHost, TokenPath, map[string]string{
		"content-type":   "application/x-www-form-urlencoded",
		"content-length": fmt.Sprint(len(body)),
	}, body, seq)
}

// AssertionRequest is AssertionCheck marshalled.
func AssertionRequest(assertion string, seq int) []byte {
	return marshal(AssertionCheck(assertion, seq))
}

func marshal(m proto.Message) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// rawCodec sends pre-marshalled CheckRequests, so the load generator spends
// no CPU on encoding (it shares the cores with the server), and reads only
// the status code of the CheckResponse.
type rawCodec struct{}

type rawRequest struct{ b []byte }

// checkStatus is the google.rpc.Code of a CheckResponse (0 is OK, allow)
// and, for a deny, the HTTP status Envoy would answer with.
type checkStatus struct{ code, http int32 }

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	r, ok := v.(*rawRequest)
	if !ok {
		return nil, fmt.Errorf("bench: codec cannot marshal %T", v)
	}
	return r.b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	st, ok := v.(*checkStatus)
	if !ok {
		return fmt.Errorf("bench: codec cannot unmarshal into %T", v)
	}
	*st = checkStatus{}
	// CheckResponse: status (1) is a google.rpc.Status whose code is field
	// 1; denied_response (2) holds an HttpStatus (1) whose code is field 1.
	return eachField(data, func(num protowire.Number, typ protowire.Type, msg []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			c, err := varintField(msg, 1)
			st.code = int32(c)
			return err
		case 2:
			return eachField(msg, func(num protowire.Number, typ protowire.Type, hs []byte) error {
				if num == 1 && typ == protowire.BytesType {
					c, err := varintField(hs, 1)
					st.http = int32(c)
					return err
				}
				return nil
			})
		}
		return nil
	})
}

// eachField calls f with every varint and length-delimited field of a
// message, in order: a varint as its encoding, a length-delimited field as
// its contents. Fixed-size fields are skipped: nothing the bench reads
// has one.
func eachField(data []byte, f func(num protowire.Number, typ protowire.Type, v []byte) error) error {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return protowire.ParseError(n)
		}
		data = data[n:]
		var v []byte
		switch typ {
		case protowire.VarintType:
			_, n = protowire.ConsumeVarint(data)
			v = data[:max(n, 0)]
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(data)
		default:
			n = protowire.ConsumeFieldValue(num, typ, data)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		data = data[n:]
		if typ == protowire.VarintType || typ == protowire.BytesType {
			if err := f(num, typ, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// varintField is the varint field want of a message; 0 when absent.
func varintField(data []byte, want protowire.Number) (uint64, error) {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		data = data[n:]
		if num == want && typ == protowire.VarintType {
			v, m := protowire.ConsumeVarint(data)
			if m < 0 {
				return 0, protowire.ParseError(m)
			}
			return v, nil
		}
		m := protowire.ConsumeFieldValue(num, typ, data)
		if m < 0 {
			return 0, protowire.ParseError(m)
		}
		data = data[m:]
	}
	return 0, nil
}
