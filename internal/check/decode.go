package check

import (
	"encoding/binary"
	"unicode/utf8"
	"unsafe"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/extauthz/extauthz/internal/policy"
)

// Decoding the CheckRequest was the largest single cost of a cached Check
// after gRPC's own work: first protobuf-go's reflective map decoding of the
// headers, then, with a direct decoder, building a dozen messages a Check
// never reads. decodeView decodes the CheckRequests Envoy sends straight
// into the request view a Check reads, with the semantics protobuf-go gives
// the message: proto3 strings must be valid UTF-8 (those the view does not
// keep too), a scalar given twice keeps the last value, a map entry's
// missing key or value is "", a later map entry replaces an earlier one of
// the same key. Its strings alias b, which the caller gives it as a private
// copy, so a request costs one copy of its bytes instead of an allocation
// per string. The headers stay a list (policy.Request.Pairs): a Check
// reads a handful of them, and their map is made only for an expression
// that reads request.headers.
//
// It decodes only the shapes it knows and reports false for anything else
// — an unknown field, a wire type a field does not have, a singular message
// given twice (protobuf-go would merge them), non-empty metadata, an
// address other than a socket address, header_map (encode_raw_headers),
// a header name with an upper-case letter, invalid UTF-8 — and then writes
// nothing, so the caller decodes the message with protobuf-go and reads it
// with readRequest, keeping every behaviour of the codec (the invalid-UTF-8
// second chance among them) for those requests.

// decodedCheck is a CheckRequest as the Check handler has gRPC decode it:
// straight into the request view of the Check's scratch when decodeView
// knows its shape, else as the message.
type decodedCheck struct {
	scratch checkScratch
	// pairs hold the headers decodeView reads (policy.Request.Pairs):
	// Envoy sends about a dozen.
	pairs [16]policy.HeaderPair
	// ext is context_extensions, of either form.
	ext map[string]string
	// msg is the message when decodeView declined, or when the Check came
	// as one (Server.Check); nil when the view was decoded directly.
	msg *authv3.CheckRequest
}

// view is the request view and context extensions of c.
func (c *decodedCheck) view() (*httpRequest, map[string]string) {
	r := &c.scratch.req
	r.scratch = &c.scratch
	if c.msg != nil {
		readRequest(c.msg, r)
		return r, c.msg.GetAttributes().GetContextExtensions()
	}
	return r, c.ext
}

// viewWire is what decodeView has read so far; the view is written from
// it only once the whole message decoded (the headers, in the check's
// pairs, are cleared if it did not).
type viewWire struct {
	ext                      map[string]string
	headers                  []policy.HeaderPair
	method, authority        string
	scheme, path, body       string
	principal, certificate   string
	rawBody                  []byte
	source, destination      bool
	request, time, http, tls bool
	metadata, routeMetadata  bool
}

func decodeView(b []byte, c *decodedCheck) bool {
	w := viewWire{headers: c.pairs[:0]}
	seen := false
	for len(b) > 0 {
		num, typ, v, n := nextField(b)
		if n < 0 || num != 1 || typ != protowire.BytesType || seen || !w.attributes(v) {
			clear(c.pairs[:])
			return false
		}
		b, seen = b[n:], true
	}
	r := &c.scratch.req
	r.Method, r.scheme, r.authority = w.method, w.scheme, w.authority
	r.principal, r.peerCert = w.principal, w.certificate
	r.Pairs = w.headers
	body := w.body
	if len(w.rawBody) > 0 {
		body = unsafe.String(unsafe.SliceData(w.rawBody), len(w.rawBody))
	}
	r.settle(w.path, body)
	c.ext = w.ext
	return true
}

// once reports whether a singular message is seen for the first time, and
// marks it seen.
func once(seen *bool) bool {
	if *seen {
		return false
	}
	*seen = true
	return true
}

func (w *viewWire) attributes(b []byte) bool {
	for len(b) > 0 {
		num, typ, v, n := nextField(b)
		if n < 0 || typ != protowire.BytesType {
			return false
		}
		b = b[n:]
		var ok bool
		switch num {
		case 1:
			ok = once(&w.source) && w.peer(v, true)
		case 2:
			ok = once(&w.destination) && w.peer(v, false)
		case 4:
			ok = once(&w.request) && w.requestAttrs(v)
		case 10:
			if w.ext == nil {
				w.ext = make(map[string]string, 1)
			}
			ok = mapEntry(v, w.ext)
		case 11:
			// Envoy sends empty metadata unless a filter put some there.
			ok = once(&w.metadata) && len(v) == 0
		case 13:
			ok = once(&w.routeMetadata) && len(v) == 0
		case 12:
			ok = once(&w.tls) && onlyStrings(v, 1)
		}
		if !ok {
			return false
		}
	}
	return true
}

// peer reads an AttributeContext.Peer; the view keeps the source's
// principal and certificate.
func (w *viewWire) peer(b []byte, source bool) bool {
	address := false
	for len(b) > 0 {
		num, typ, v, n := nextField(b)
		if n < 0 || typ != protowire.BytesType {
			return false
		}
		b = b[n:]
		var ok bool
		switch num {
		case 1:
			ok = once(&address) && socketAddress(v)
		case 2:
			_, ok = wireString(v)
		case 3:
			ok = mapEntry(v, nil)
		case 4:
			var s string
			if s, ok = wireString(v); source {
				w.principal = s
			}
		case 5:
			var s string
			if s, ok = wireString(v); source {
				w.certificate = s
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// socketAddress checks an Address holding a SocketAddress, once: the
// oneof's other members (pipes, internal addresses) and an Address with no
// member go to protobuf-go.
func socketAddress(b []byte) bool {
	num, typ, v, n := nextField(b)
	if n < 0 || num != 1 || typ != protowire.BytesType || n != len(b) {
		return false
	}
	for len(v) > 0 {
		num, typ, s, n := nextField(v)
		if n < 0 {
			return false
		}
		v = v[n:]
		var ok bool
		switch {
		case (num == 1 || num == 3) && typ == protowire.VarintType:
			ok = true // protocol, port_value
		case num == 2 && typ == protowire.BytesType:
			_, ok = wireString(s)
		}
		if !ok {
			return false
		}
	}
	return true
}

func (w *viewWire) requestAttrs(b []byte) bool {
	for len(b) > 0 {
		num, typ, v, n := nextField(b)
		if n < 0 || typ != protowire.BytesType {
			return false
		}
		b = b[n:]
		var ok bool
		switch num {
		case 1:
			ok = once(&w.time) && onlyVarints(v, 2)
		case 2:
			ok = once(&w.http) && w.httpAttrs(v)
		}
		if !ok {
			return false
		}
	}
	return true
}

func (w *viewWire) httpAttrs(b []byte) bool {
	for len(b) > 0 {
		num, typ, v, n := nextField(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if num == 9 { // size
			if typ != protowire.VarintType {
				return false
			}
			continue
		}
		if typ != protowire.BytesType {
			return false
		}
		ok := true
		switch num {
		case 1, 7, 8, 10: // id, query (Envoy sends it in path), fragment, protocol
			_, ok = wireString(v)
		case 2:
			w.method, ok = wireString(v)
		case 3:
			ok = w.header(v)
		case 4:
			w.path, ok = wireString(v)
		case 5:
			w.authority, ok = wireString(v)
		case 6:
			w.scheme, ok = wireString(v)
		case 11:
			w.body, ok = wireString(v)
		case 12:
			w.rawBody = v
		default: // header_map (13) and what the decoder does not know
			ok = false
		}
		if !ok {
			return false
		}
	}
	return true
}

// header adds a headers map entry to the view's pairs; a name with an
// upper-case letter (Envoy sends none) is declined, so readRequest
// lower-cases and joins it.
func (w *viewWire) header(b []byte) bool {
	k, v, ok := headerEntry(b)
	if !ok {
		if k, v, ok = entry(b); !ok {
			return false
		}
	}
	if hasUpper(k) {
		return false
	}
	w.headers = append(w.headers, policy.HeaderPair{Name: k, Value: v})
	return true
}

// headerEntry reads the entry Envoy writes for a header, a key then a
// value, each with a one-byte tag and a one-byte length (two for the
// value), both ASCII. ok is false for any other shape, which entry then
// reads field by field.
func headerEntry(b []byte) (key, value string, ok bool) {
	if len(b) < 4 || b[0] != 0x0a || b[1] >= 0x80 {
		return "", "", false
	}
	kEnd := 2 + int(b[1])
	if kEnd+2 > len(b) || b[kEnd] != 0x12 {
		return "", "", false
	}
	vAt, n := kEnd+2, int(b[kEnd+1])
	if n >= 0x80 {
		if vAt >= len(b) || b[vAt] >= 0x80 {
			return "", "", false
		}
		n = n&0x7f | int(b[vAt])<<7
		vAt++
	}
	if vAt+n != len(b) {
		return "", "", false
	}
	k, v := b[2:kEnd], b[vAt:]
	if !isASCII(k) || !isASCII(v) {
		return "", "", false
	}
	return unsafe.String(unsafe.SliceData(k), len(k)), unsafe.String(unsafe.SliceData(v), len(v)), true
}

// hasUpper reports whether the ASCII string s has an upper-case letter,
// eight bytes at a time (the last eight overlapping the word before):
// adding 0x80-'A' to a byte sets its top bit from 'A' up, adding
// 0x80-'Z'-1 from past 'Z', and no byte below 0x80 carries into the next.
func hasUpper(s string) bool {
	const ones, tops = 0x0101010101010101, 0x8080808080808080
	upper := func(x uint64) bool { return (x+ones*(0x80-'A'))&^(x+ones*(0x80-'Z'-1))&tops != 0 }
	n := len(s)
	if n < 8 {
		for i := 0; i < n; i++ {
			if s[i]-'A' < 26 {
				return true
			}
		}
		return false
	}
	b := unsafe.Slice(unsafe.StringData(s), n)
	for w := b; len(w) > 8; w = w[8:] {
		if upper(binary.LittleEndian.Uint64(w[:8])) {
			return true
		}
	}
	return upper(binary.LittleEndian.Uint64(b[n-8:]))
}

// mapEntry adds a map<string, string> entry to m, or only checks it when m
// is nil.
func mapEntry(b []byte, m map[string]string) bool {
	k, v, ok := entry(b)
	if ok && m != nil {
		m[k] = v
	}
	return ok
}

func entry(b []byte) (key, value string, ok bool) {
	for len(b) > 0 {
		num, typ, v, n := nextField(b)
		if n < 0 || typ != protowire.BytesType {
			return "", "", false
		}
		b = b[n:]
		switch num {
		case 1:
			key, ok = wireString(v)
		case 2:
			value, ok = wireString(v)
		default:
			ok = false
		}
		if !ok {
			return "", "", false
		}
	}
	return key, value, true
}

// onlyStrings checks a message whose fields, numbered 1 to max, are all
// strings.
func onlyStrings(b []byte, max protowire.Number) bool {
	for len(b) > 0 {
		num, typ, v, n := nextField(b)
		if n < 0 || num < 1 || num > max || typ != protowire.BytesType {
			return false
		}
		if _, ok := wireString(v); !ok {
			return false
		}
		b = b[n:]
	}
	return true
}

// onlyVarints checks a message whose fields, numbered 1 to max, are all
// varints (a Timestamp).
func onlyVarints(b []byte, max protowire.Number) bool {
	for len(b) > 0 {
		num, typ, _, n := nextField(b)
		if n < 0 || num < 1 || num > max || typ != protowire.VarintType {
			return false
		}
		b = b[n:]
	}
	return true
}

// wireString views v as a string, if it is valid UTF-8. Nearly every
// string Envoy sends is ASCII, checked here eight bytes at a time; only a
// string with a byte above 0x7f pays for utf8.Valid.
func wireString(v []byte) (string, bool) {
	if !isASCII(v) && !utf8.Valid(v) {
		return "", false
	}
	return unsafe.String(unsafe.SliceData(v), len(v)), true
}

func isASCII(v []byte) bool {
	var or uint64
	if n := len(v); n >= 8 {
		w := v
		for len(w) >= 32 {
			or |= binary.LittleEndian.Uint64(w[:8]) | binary.LittleEndian.Uint64(w[8:16]) |
				binary.LittleEndian.Uint64(w[16:24]) | binary.LittleEndian.Uint64(w[24:32])
			w = w[32:]
		}
		for len(w) > 8 {
			or |= binary.LittleEndian.Uint64(w[:8])
			w = w[8:]
		}
		or |= binary.LittleEndian.Uint64(v[n-8:])
	} else {
		for _, c := range v {
			or |= uint64(c)
		}
	}
	return or&0x8080808080808080 == 0
}

// nextField reads the first field of the message b: its number, wire type,
// the bytes of a length-delimited field, and the length of the whole
// field. n is negative when b is malformed or the field has a wire type
// other than those two (a varint's value is never needed). Most fields of
// a CheckRequest have a one-byte tag and a one-byte length or value, read
// here without a call.
func nextField(b []byte) (num protowire.Number, typ protowire.Type, v []byte, n int) {
	if len(b) >= 2 && b[0] < 0x80 && b[1] < 0x80 && b[0]>>3 != 0 {
		num, typ = protowire.Number(b[0]>>3), protowire.Type(b[0]&7)
		switch typ {
		case protowire.BytesType:
			if end := 2 + int(b[1]); end <= len(b) {
				return num, typ, b[2:end:end], end
			}
		case protowire.VarintType:
			return num, typ, nil, 2
		}
	}
	// A length of 128 to 16383 bytes: the token's header, and the messages
	// that hold it.
	if len(b) >= 3 && b[0] < 0x80 && b[1] >= 0x80 && b[2] < 0x80 && b[0]>>3 != 0 && b[0]&7 == byte(protowire.BytesType) {
		if end := 3 + (int(b[1]&0x7f) | int(b[2])<<7); end <= len(b) {
			return protowire.Number(b[0] >> 3), protowire.BytesType, b[3:end:end], end
		}
	}
	return nextFieldSlow(b)
}

func nextFieldSlow(b []byte) (num protowire.Number, typ protowire.Type, v []byte, n int) {
	num, typ, n = protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, nil, n
	}
	var m int
	switch typ {
	case protowire.BytesType:
		v, m = protowire.ConsumeBytes(b[n:])
	case protowire.VarintType:
		_, m = protowire.ConsumeVarint(b[n:])
	default:
		return 0, 0, nil, -1
	}
	if m < 0 {
		return 0, 0, nil, m
	}
	return num, typ, v, n + m
}
