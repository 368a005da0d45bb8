package check

import (
	"unicode/utf8"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
)

// Decoding the CheckRequest was the largest single cost of a cached Check
// (a fifth of the server's CPU, most of it protobuf-go's reflective map
// decoding of the headers). decodeCheckRequest is a direct decoder for the
// fields Envoy sends, with the semantics protobuf-go gives them: proto3
// strings must be valid UTF-8, a scalar given twice keeps the last value,
// a map entry's missing key or value is "". Its strings and bytes alias b,
// which the caller gives it as a private copy, so a request costs one copy
// of its bytes instead of an allocation per string.
//
// It decodes only the shapes it knows, and reports false for anything else
// — an unknown field, a wire type a field does not have, a singular message
// given twice (protobuf-go would merge them), non-empty metadata, invalid
// UTF-8 — so that the caller resets the message and decodes it with
// protobuf-go, keeping every behaviour of the codec (the invalid-UTF-8
// second chance among them) for those requests.
func decodeCheckRequest(b []byte, req *authv3.CheckRequest) bool {
	seen := false
	return eachFieldOK(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) bool {
		if num != 1 || typ != protowire.BytesType || seen {
			return false
		}
		seen = true
		ar := &decodeArena{}
		req.Attributes = ar.attributes()
		return decodeAttributes(v, req.Attributes, ar)
	})
}

func decodeAttributes(b []byte, a *authv3.AttributeContext, ar *decodeArena) bool {
	return eachFieldOK(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) bool {
		if typ != protowire.BytesType {
			return false
		}
		switch num {
		case 1:
			if a.Source != nil {
				return false
			}
			a.Source = ar.peer()
			return decodePeer(v, a.Source, ar)
		case 2:
			if a.Destination != nil {
				return false
			}
			a.Destination = ar.peer()
			return decodePeer(v, a.Destination, ar)
		case 4:
			if a.Request != nil {
				return false
			}
			a.Request = ar.request()
			return decodeRequest(v, a.Request, ar)
		case 10:
			if a.ContextExtensions == nil {
				a.ContextExtensions = make(map[string]string, 1)
			}
			return decodeMapEntry(v, a.ContextExtensions)
		case 11, 13:
			// Envoy sends empty metadata unless a filter put some there.
			if len(v) != 0 {
				return false
			}
			if num == 11 {
				if a.MetadataContext != nil {
					return false
				}
				a.MetadataContext = &corev3.Metadata{}
			} else {
				if a.RouteMetadataContext != nil {
					return false
				}
				a.RouteMetadataContext = &corev3.Metadata{}
			}
			return true
		case 12:
			if a.TlsSession != nil {
				return false
			}
			a.TlsSession = &authv3.AttributeContext_TLSSession{}
			return eachFieldOK(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) bool {
				if num != 1 || typ != protowire.BytesType {
					return false
				}
				s, ok := wireString(v)
				a.TlsSession.Sni = s
				return ok
			})
		}
		return false
	})
}

func decodePeer(b []byte, p *authv3.AttributeContext_Peer, ar *decodeArena) bool {
	return eachFieldOK(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) bool {
		if typ != protowire.BytesType {
			return false
		}
		var ok bool
		switch num {
		case 1:
			if p.Address != nil {
				return false
			}
			var sa *corev3.SocketAddress
			p.Address, sa = ar.socketAddress()
			return decodeAddress(v, sa, ar)
		case 2:
			p.Service, ok = wireString(v)
		case 3:
			if p.Labels == nil {
				p.Labels = make(map[string]string, 1)
			}
			return decodeMapEntry(v, p.Labels)
		case 4:
			p.Principal, ok = wireString(v)
		case 5:
			p.Certificate, ok = wireString(v)
		}
		return ok
	})
}

// decodeAddress decodes an Address into sa, the SocketAddress of its
// oneof, set before the Address is read.
func decodeAddress(b []byte, sa *corev3.SocketAddress, ar *decodeArena) bool {
	seen := false
	ok := eachFieldOK(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) bool {
		// Only a socket address, once: the oneof's other members (pipes,
		// internal addresses) go to protobuf-go. An empty Address (no
		// member) is refused at the end, for the same reason.
		if num != 1 || typ != protowire.BytesType || seen {
			return false
		}
		seen = true
		return eachFieldOK(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) bool {
			var ok bool
			switch {
			case num == 1 && typ == protowire.VarintType:
				sa.Protocol, ok = corev3.SocketAddress_Protocol(int32(x)), true
			case num == 2 && typ == protowire.BytesType:
				sa.Address, ok = wireString(v)
			case num == 3 && typ == protowire.VarintType:
				sa.PortSpecifier, ok = ar.portValue(uint32(x)), true
			}
			return ok
		})
	})
	return ok && seen
}

func decodeRequest(b []byte, r *authv3.AttributeContext_Request, ar *decodeArena) bool {
	return eachFieldOK(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) bool {
		if typ != protowire.BytesType {
			return false
		}
		switch num {
		case 1:
			if r.Time != nil {
				return false
			}
			r.Time = ar.timestamp()
			return eachFieldOK(v, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) bool {
				switch {
				case typ != protowire.VarintType:
					return false
				case num == 1:
					r.Time.Seconds = int64(x)
				case num == 2:
					r.Time.Nanos = int32(x)
				default:
					return false
				}
				return true
			})
		case 2:
			if r.Http != nil {
				return false
			}
			r.Http = ar.httpRequest()
			return decodeHTTP(v, r.Http)
		}
		return false
	})
}

func decodeHTTP(b []byte, h *authv3.AttributeContext_HttpRequest) bool {
	// Count the headers first, so their map is made at its size.
	headers := 0
	if !eachFieldOK(b, func(num protowire.Number, _ protowire.Type, _ []byte, _ uint64) bool {
		if num == 3 {
			headers++
		}
		return true
	}) {
		return false
	}
	if headers > 0 {
		h.Headers = make(map[string]string, headers)
	}
	return eachFieldOK(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) bool {
		if num == 9 {
			if typ != protowire.VarintType {
				return false
			}
			h.Size = int64(x)
			return true
		}
		if typ != protowire.BytesType {
			return false
		}
		var ok bool
		switch num {
		case 1:
			h.Id, ok = wireString(v)
		case 2:
			h.Method, ok = wireString(v)
		case 3:
			return decodeMapEntry(v, h.Headers)
		case 4:
			h.Path, ok = wireString(v)
		case 5:
			h.Host, ok = wireString(v)
		case 6:
			h.Scheme, ok = wireString(v)
		case 7:
			h.Query, ok = wireString(v)
		case 8:
			h.Fragment, ok = wireString(v)
		case 10:
			h.Protocol, ok = wireString(v)
		case 11:
			h.Body, ok = wireString(v)
		case 12:
			// protobuf-go gives a present bytes field a non-nil slice.
			h.RawBody, ok = v[:len(v):len(v)], true
			if h.RawBody == nil {
				h.RawBody = []byte{}
			}
		case 13:
			if h.HeaderMap != nil {
				return false
			}
			h.HeaderMap = &corev3.HeaderMap{}
			return decodeHeaderMap(v, h.HeaderMap)
		}
		return ok
	})
}

func decodeHeaderMap(b []byte, hm *corev3.HeaderMap) bool {
	n := 0
	if !eachFieldOK(b, func(num protowire.Number, typ protowire.Type, _ []byte, _ uint64) bool {
		n++
		return num == 1 && typ == protowire.BytesType
	}) {
		return false
	}
	vals := make([]corev3.HeaderValue, n)
	hm.Headers = make([]*corev3.HeaderValue, n)
	i := 0
	return eachFieldOK(b, func(_ protowire.Number, _ protowire.Type, v []byte, _ uint64) bool {
		hv := &vals[i]
		hm.Headers[i] = hv
		i++
		return eachFieldOK(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) bool {
			if typ != protowire.BytesType {
				return false
			}
			var ok bool
			switch num {
			case 1:
				hv.Key, ok = wireString(v)
			case 2:
				hv.Value, ok = wireString(v)
			case 3:
				hv.RawValue, ok = v[:len(v):len(v)], true
				if hv.RawValue == nil {
					hv.RawValue = []byte{}
				}
			}
			return ok
		})
	})
}

// decodeMapEntry adds a map<string, string> entry to m.
func decodeMapEntry(b []byte, m map[string]string) bool {
	var k, val string
	if !eachFieldOK(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) bool {
		if typ != protowire.BytesType {
			return false
		}
		var ok bool
		switch num {
		case 1:
			k, ok = wireString(v)
		case 2:
			val, ok = wireString(v)
		}
		return ok
	}) {
		return false
	}
	m[k] = val
	return true
}

// wireString views v as a string, if it is valid UTF-8.
func wireString(v []byte) (string, bool) {
	if !utf8.Valid(v) {
		return "", false
	}
	return unsafe.String(unsafe.SliceData(v), len(v)), true
}

// eachFieldOK calls f with each field of the message b: its number, wire
// type, and the bytes of a length-delimited field or the value of a varint.
// It reports false when b is malformed, holds a wire type other than those
// two, or f returns false.
func eachFieldOK(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) bool) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch typ {
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 || !f(num, typ, v, 0) {
				return false
			}
			b = b[m:]
		case protowire.VarintType:
			x, m := protowire.ConsumeVarint(b)
			if m < 0 || !f(num, typ, nil, x) {
				return false
			}
			b = b[m:]
		default:
			return false
		}
	}
	return true
}
