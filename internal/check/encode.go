package check

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/structpb"
)

// encodeCheckResponse appends the wire form of m to b: a direct encoder for
// the responses a Check builds (status, OK or denied response, headers,
// headers to remove, string-valued metadata), several times cheaper than
// protobuf-go's reflective marshaller, which gRPC's codec would use.
// (go-control-plane's vtproto marshallers are compiled only under the
// vtprotobuf build tag.) It reports false for any field it does not know —
// an error_response, query parameters, non-string metadata — and the
// caller marshals m with protobuf-go. It never looks for unknown fields,
// which a response a Check builds cannot have: asking each message through
// protobuf-go's reflection was a third of the encoding.
//
// A Struct shared by memos (metamemo.go) is copied from the wire form
// memos keep.
func encodeCheckResponse(b []byte, m *authv3.CheckResponse, memos *metaMemos) ([]byte, bool) {
	ok := true
	if m.Status != nil {
		b, ok = appendMsg(b, 1, func(b []byte) ([]byte, bool) { return appendStatus(b, m.Status) })
	}
	switch r := m.HttpResponse.(type) {
	case nil:
	case *authv3.CheckResponse_OkResponse:
		if ok && r.OkResponse != nil {
			b, ok = appendMsg(b, 3, func(b []byte) ([]byte, bool) { return appendOK(b, r.OkResponse) })
		} else if ok {
			b = appendEmpty(b, 3)
		}
	case *authv3.CheckResponse_DeniedResponse:
		if ok && r.DeniedResponse != nil {
			b, ok = appendMsg(b, 2, func(b []byte) ([]byte, bool) { return appendDenied(b, r.DeniedResponse) })
		} else if ok {
			b = appendEmpty(b, 2)
		}
	default:
		return b, false
	}
	if ok && m.DynamicMetadata != nil {
		if w := memos.wireOf(m.DynamicMetadata); w != nil {
			b = appendTag(b, 4, protowire.BytesType)
			b = protowire.AppendBytes(b, w)
		} else {
			b, ok = appendMsg(b, 4, func(b []byte) ([]byte, bool) { return appendStruct(b, m.DynamicMetadata) })
		}
	}
	return b, ok
}

func appendStatus(b []byte, s *rpcstatus.Status) ([]byte, bool) {
	if len(s.Details) > 0 {
		return b, false
	}
	if s.Code != 0 {
		b = appendTag(b, 1, protowire.VarintType)
		b = appendVarint(b, uint64(int64(s.Code)))
	}
	return appendString(b, 2, s.Message), true
}

func appendOK(b []byte, r *authv3.OkHttpResponse) ([]byte, bool) {
	// The deprecated fields are ones this encoder leaves to protobuf-go.
	//lint:ignore SA1019 checked only to decline
	if r.DynamicMetadata != nil || len(r.QueryParametersToSet) > 0 || len(r.QueryParametersToRemove) > 0 {
		return b, false
	}
	b, ok := appendHeaders(b, 2, r.Headers)
	for _, h := range r.HeadersToRemove {
		b = appendTag(b, 5, protowire.BytesType)
		b = appendStringBody(b, h)
	}
	if ok {
		b, ok = appendHeaders(b, 6, r.ResponseHeadersToAdd)
	}
	return b, ok
}

func appendDenied(b []byte, r *authv3.DeniedHttpResponse) ([]byte, bool) {
	ok := true
	if r.Status != nil {
		b, ok = appendMsg(b, 1, func(b []byte) ([]byte, bool) {
			if r.Status.Code != 0 {
				b = appendTag(b, 1, protowire.VarintType)
				b = appendVarint(b, uint64(int64(r.Status.Code)))
			}
			return b, true
		})
	}
	if ok {
		b, ok = appendHeaders(b, 2, r.Headers)
	}
	return appendString(b, 3, r.Body), ok
}

func appendHeaders(b []byte, num protowire.Number, hs []*corev3.HeaderValueOption) ([]byte, bool) {
	ok := true
	for _, h := range hs {
		//lint:ignore SA1019 checked only to decline
		if h == nil || h.Append != nil {
			return b, false
		}
		b, ok = appendMsg(b, num, func(b []byte) ([]byte, bool) {
			ok := true
			if hv := h.Header; hv != nil {
				b, ok = appendMsg(b, 1, func(b []byte) ([]byte, bool) {
					b = appendString(b, 1, hv.Key)
					b = appendString(b, 2, hv.Value)
					if len(hv.RawValue) > 0 {
						b = appendTag(b, 3, protowire.BytesType)
						b = protowire.AppendBytes(b, hv.RawValue)
					}
					return b, true
				})
			}
			if h.AppendAction != 0 {
				b = appendTag(b, 3, protowire.VarintType)
				b = appendVarint(b, uint64(int64(h.AppendAction)))
			}
			if h.KeepEmptyValue {
				b = appendTag(b, 4, protowire.VarintType)
				b = appendVarint(b, 1)
			}
			return b, ok
		})
		if !ok {
			return b, false
		}
	}
	return b, true
}

// appendStruct encodes a Struct whose values are all strings.
func appendStruct(b []byte, s *structpb.Struct) ([]byte, bool) {
	ok := true
	for k, v := range s.Fields {
		sv, isString := v.GetKind().(*structpb.Value_StringValue)
		if v == nil || !isString {
			return b, false
		}
		b, ok = appendMsg(b, 1, func(b []byte) ([]byte, bool) {
			b = appendString(b, 1, k)
			// The entry's value is a Value message holding string_value (3).
			return appendMsg(b, 2, func(b []byte) ([]byte, bool) {
				b = appendTag(b, 3, protowire.BytesType)
				return appendStringBody(b, sv.StringValue), true
			})
		})
		if !ok {
			return b, false
		}
	}
	return b, true
}

// appendString appends a proto3 string field, omitted when empty.
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = appendTag(b, num, protowire.BytesType)
	return appendStringBody(b, s)
}

// appendTag is protowire.AppendTag without a call for the one-byte tags
// (fields 1 to 15) of every message here.
func appendTag(b []byte, num protowire.Number, typ protowire.Type) []byte {
	if num < 16 {
		return append(b, byte(num)<<3|byte(typ))
	}
	return protowire.AppendTag(b, num, typ)
}

// appendVarint is protowire.AppendVarint without a call for values below
// 128: codes, append actions, the lengths of most strings.
func appendVarint(b []byte, v uint64) []byte {
	if v < 0x80 {
		return append(b, byte(v))
	}
	return protowire.AppendVarint(b, v)
}

// appendStringBody is protowire.AppendString: s's length, then s.
func appendStringBody(b []byte, s string) []byte {
	return append(appendVarint(b, uint64(len(s))), s...)
}

func appendEmpty(b []byte, num protowire.Number) []byte {
	b = appendTag(b, num, protowire.BytesType)
	return append(b, 0)
}

// appendMsg appends field num holding the message f appends: its length
// is written after it, in a byte reserved before it, and the bytes shifted
// in the rare case that the length needs more than one.
func appendMsg(b []byte, num protowire.Number, f func([]byte) ([]byte, bool)) ([]byte, bool) {
	b = appendTag(b, num, protowire.BytesType)
	at := len(b)
	b = append(b, 0)
	b, ok := f(b)
	if !ok {
		return b, false
	}
	n := len(b) - at - 1
	if n < 0x80 {
		b[at] = byte(n)
		return b, true
	}
	k := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, k-1)...)
	copy(b[at+k:], b[at+1:at+1+n])
	protowire.AppendVarint(b[at:at], uint64(n))
	return b, true
}
