package check

import (
	"errors"
	"unicode/utf8"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Envoy forwards header names and values, the path and the body as the
// bytes that came, in proto3 `string` fields, and protobuf-go refuses a
// string that is not UTF-8. Left to gRPC's codec such a CheckRequest fails
// to decode, the RPC ends in Internal, and Envoy's failure_mode_allow
// decides: an allow wherever an operator turned it on, for any client that
// sends one byte of Latin-1. The server codec gives those requests a
// decision: a 400 invalid_request with reason request_undecodable.

// ServerCodec is the gRPC server option that makes every CheckRequest Envoy
// can send decodable, so it gets a decision instead of a gRPC error. Every
// extauthz gRPC server must be built with it.
func ServerCodec() grpc.ServerOption {
	return grpc.ForceServerCodecV2(codec{base: encoding.GetCodecV2(grpcproto.Name)})
}

// codec is gRPC's own proto codec, with a second chance for a CheckRequest
// that fails to decode, and direct code for the messages of a Check: a
// decoder of the CheckRequests Envoy sends straight into the view a Check
// reads (decodeView) and an encoder for the responses a Check builds
// (encodeCheckResponse), both used by Register's handler, several times
// cheaper than protobuf-go's reflective code. Whatever they do not know
// goes to gRPC's codec; only a failed decode pays for the second chance.
type codec struct{ base encoding.CodecV2 }

func (c codec) Name() string { return c.base.Name() }

// Marshal hands over the bytes of a response Register's handler encoded,
// and encodes any other message with gRPC's codec.
func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if e, ok := v.(*encodedResponse); ok {
		return mem.BufferSlice{mem.NewBuffer((*[]byte)(e), responseBufs)}, nil
	}
	return c.base.Marshal(v)
}

// Unmarshal decodes data into v. A decodedCheck is decoded as a view when
// decodeView knows the request's shape, else as the message. When a
// CheckRequest fails to decode because string fields hold invalid UTF-8,
// it replaces those bytes, decodes again and marks the request, so check
// denies it. A message that still fails is broken in some other way, a bug
// of the sender: its original error stands.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if d, ok := v.(*decodedCheck); ok {
		// The view's strings alias this copy of the bytes.
		if decodeView(data.Materialize(), d) {
			return nil
		}
		d.msg = &authv3.CheckRequest{}
		v = d.msg
	}
	req, ok := v.(*authv3.CheckRequest)
	err := c.base.Unmarshal(data, v)
	if err == nil || !ok {
		return err
	}
	// data stays valid until Unmarshal returns; Materialize copies it, and
	// the copy is patched in place.
	b := data.Materialize()
	replaced, serr := sanitiseUTF8(b, req.ProtoReflect().Descriptor(), maxSanitiseDepth)
	if serr != nil || !replaced {
		return err
	}
	if proto.Unmarshal(b, req) != nil {
		return err
	}
	markUndecodable(req)
	return nil
}

// maxSanitiseDepth bounds the nesting sanitiseUTF8 enters, counting every
// message (a map entry too): protobuf-go's own limit, so the sanitiser
// gives up only on what the decoder would refuse anyway.
const maxSanitiseDepth = protowire.DefaultRecursionLimit

// utf8Substitute replaces each byte of an invalid UTF-8 sequence. One byte
// for one byte keeps every length prefix right, so the sanitiser patches
// the message in place, in one pass, with no re-encoding: its cost does not
// grow with the nesting. ASCII SUB is the control character meant for a
// character that cannot be represented; unlike '?', it cannot split a path
// from its query in the decision log, and logs escape it visibly.
const utf8Substitute = 0x1a

// sanitiseUTF8 walks the wire bytes b of a message of type md and overwrites
// every byte of invalid UTF-8 in its string fields, map keys and values and
// those of the messages within, to depth levels of nesting. Unknown fields,
// bytes fields, scalars and fields sent with an unexpected wire type (which
// the decoder keeps as unknown) are left as they are. It reports whether it
// replaced anything, and an error for bytes that are not a message or nest
// deeper than depth.
func sanitiseUTF8(b []byte, md protoreflect.MessageDescriptor, depth int) (replaced bool, err error) {
	fields := md.Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return replaced, protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return replaced, protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return replaced, protowire.ParseError(n)
		}
		b = b[n:]
		fd := fields.ByNumber(num)
		if fd == nil {
			continue
		}
		switch fd.Kind() {
		case protoreflect.StringKind:
			if replaceInvalidUTF8(v) {
				replaced = true
			}
		case protoreflect.MessageKind:
			// A map field's message is its entry: key 1, value 2.
			if depth <= 0 {
				return replaced, errSanitiseDepth
			}
			r, err := sanitiseUTF8(v, fd.Message(), depth-1)
			replaced = replaced || r
			if err != nil {
				return replaced, err
			}
		}
	}
	return replaced, nil
}

var errSanitiseDepth = errors.New("check: CheckRequest nests too deep")

// replaceInvalidUTF8 overwrites each byte of s that is not part of a valid
// UTF-8 sequence with utf8Substitute, and reports whether there was one.
func replaceInvalidUTF8(s []byte) bool {
	if utf8.Valid(s) {
		return false
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			s[i] = utf8Substitute
		}
		i += size
	}
	return true
}

// undecodableKey marks, in context_extensions, a CheckRequest that decoded
// only once its invalid UTF-8 was replaced. No Envoy configuration would
// name a context extension with a NUL byte, and a request that carries the
// key some other way (a route that sets it, a client that speaks to the
// gRPC port itself) can gain nothing from it: the marker only ever causes
// a deny, before any rule is evaluated.
const undecodableKey = "\x00extauthz:undecodable"

func markUndecodable(req *authv3.CheckRequest) {
	if req.Attributes == nil {
		req.Attributes = &authv3.AttributeContext{}
	}
	if req.Attributes.ContextExtensions == nil {
		req.Attributes.ContextExtensions = make(map[string]string, 1)
	}
	req.Attributes.ContextExtensions[undecodableKey] = ""
}

// undecodable is the decision of a marked request: a 400 invalid_request,
// as for any malformed request; its bytes were altered, so no rule may see
// them.
func undecodable(tr *trace) *decision {
	if tr != nil {
		tr.add("decode", false, "invalid UTF-8 in a string field (header, path or body); the codec replaced it")
	}
	return deny(denyInvalidRequest, ReasonUndecodable)
}
