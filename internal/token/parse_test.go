package token

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

const hs = `{"alg":"HS256"}`

// withSig is a well-formed token around header and payload; the signature is
// junk because these cases must fail before it matters.
func withSig(header, payload string) string { return compact(header, payload, nil) }

func TestParseRejects(t *testing.T) {
	good := signed("HS256", goodClaims)
	parts := strings.Split(good, ".")
	big := signed("HS256", `{"pad":"`+strings.Repeat("x", DefaultMaxTokenBytes)+`"}`)

	cases := []struct {
		name string
		raw  string
		want error
	}{
		// size, checked first
		{"over default limit", big, ErrMalformed},
		{"1 MiB", strings.Repeat("a", 1<<20), ErrMalformed},
		{"100k segments", strings.Repeat("a.", 100000) + "a", ErrMalformed},

		// segments
		{"empty", "", ErrMalformed},
		{"one segment", parts[0], ErrMalformed},
		{"two segments", parts[0] + "." + parts[1], ErrMalformed},
		{"four segments", good + ".c2ln", ErrMalformed},
		{"trailing dot", good + ".", ErrMalformed},
		{"JWE five segments", withSig(`{"alg":"RSA-OAEP","enc":"A256GCM"}`, "{}") + ".aaaa.bbbb", ErrMalformed},
		{"JWS JSON serialisation", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, ErrMalformed},
		{"JWS JSON multi-signature", `{"payload":"` + parts[1] + `","signatures":[{"protected":"` + parts[0] + `","signature":"` + parts[2] + `"},{"signature":"c2ln"}]}`, ErrMalformed},
		{"trailing data", good + " x", ErrMalformed},
		{"empty header", "." + parts[1] + "." + parts[2], ErrMalformed},
		{"empty payload", parts[0] + ".." + parts[2], ErrMalformed},
		{"empty signature", parts[0] + "." + parts[1] + ".", ErrMalformed},

		// base64url
		{"padding", padded(good), ErrMalformed},
		{"standard alphabet", stdAlphabet(), ErrMalformed},
		{"leading space", " " + good, ErrMalformed},
		{"trailing newline", good + "\n", ErrMalformed},
		{"CR LF inside a segment", parts[0][:4] + "\r\n" + parts[0][4:] + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"tab inside a segment", parts[0][:4] + "\t" + parts[0][4:] + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"non-canonical trailing bits", nonCanonical(), ErrMalformed},
		{"impossible length", "a." + parts[1] + "." + parts[2], ErrMalformed},
		{"non-canonical signature bits", parts[0] + "." + parts[1] + ".AB", ErrMalformed},

		// header JSON
		{"header not JSON", enc("alg=HS256") + ".e30.c2ln", ErrMalformed},
		{"header an array", withSig(`["alg","HS256"]`, "{}"), ErrMalformed},
		{"header a string", withSig(`"HS256"`, "{}"), ErrMalformed},
		{"header trailing data", withSig(hs+`{}`, "{}"), ErrMalformed},
		{"header two objects", withSig(hs+` {"alg":"HS256"}`, "{}"), ErrMalformed},
		{"header BOM", withSig("\ufeff"+hs, "{}"), ErrMalformed},
		{"header invalid UTF-8", withSig(`{"alg":"HS256","kid":"`+"\xff"+`"}`, "{}"), ErrMalformed},
		{"header overlong UTF-8", withSig(`{"alg":"HS256","kid":"`+"\xc0\xaf"+`"}`, "{}"), ErrMalformed},
		{"header UTF-8 surrogate", withSig(`{"alg":"HS256","kid":"`+"\xed\xa0\x80"+`"}`, "{}"), ErrMalformed},
		{"header lone high surrogate", withSig(`{"alg":"HS256","kid":"\ud800"}`, "{}"), ErrMalformed},
		{"header lone low surrogate", withSig(`{"alg":"HS256","kid":"\udc00x"}`, "{}"), ErrMalformed},
		{"header high surrogate then BMP", withSig(`{"alg":"HS256","kid":"\ud800\u0041"}`, "{}"), ErrMalformed},
		{"header duplicate alg", withSig(`{"alg":"HS256","alg":"RS256"}`, "{}"), ErrMalformed},
		{"header duplicate alg by escape", withSig(`{"alg":"HS256","\u0061lg":"HS256"}`, "{}"), ErrMalformed},
		{"header duplicate other member", withSig(`{"alg":"HS256","x":1,"x":1}`, "{}"), ErrMalformed},
		{"header duplicate past the scan", withSig(manyMembers(20, "m5"), "{}"), ErrMalformed},
		{"header leading zero", withSig(`{"alg":"HS256","x":01}`, "{}"), ErrMalformed},
		{"header NaN", withSig(`{"alg":"HS256","x":NaN}`, "{}"), ErrMalformed},
		{"header trailing comma", withSig(`{"alg":"HS256",}`, "{}"), ErrMalformed},
		{"header single quotes", withSig(`{'alg':'HS256'}`, "{}"), ErrMalformed},
		{"header comment", withSig(`{"alg":"HS256"/*x*/}`, "{}"), ErrMalformed},
		{"header raw tab in string", withSig("{\"alg\":\"HS256\",\"kid\":\"a\tb\"}", "{}"), ErrMalformed},
		{"header kid not a string", withSig(`{"alg":"HS256","kid":7}`, "{}"), ErrMalformed},
		{"header typ null", withSig(`{"alg":"HS256","typ":null}`, "{}"), ErrMalformed},
		{"header enc (JWE)", withSig(`{"alg":"HS256","enc":"A128GCM"}`, "{}"), ErrMalformed},

		// alg
		{"no alg", withSig(`{"typ":"JWT"}`, "{}"), ErrAlgorithm},
		{"ALG is not alg", withSig(`{"ALG":"HS256"}`, "{}"), ErrAlgorithm},
		{"alg not a string", withSig(`{"alg":256}`, "{}"), ErrAlgorithm},
		{"alg null", withSig(`{"alg":null}`, "{}"), ErrAlgorithm},
		{"alg empty", withSig(`{"alg":""}`, "{}"), ErrAlgorithm},
		{"alg none", withSig(`{"alg":"none"}`, goodClaims), ErrAlgorithm},
		{"alg NONE", withSig(`{"alg":"NONE"}`, goodClaims), ErrAlgorithm},
		{"alg nOnE", withSig(`{"alg":"nOnE"}`, goodClaims), ErrAlgorithm},
		{"alg none unsigned", enc(`{"alg":"none"}`) + "." + enc(goodClaims) + ".", ErrAlgorithm},
		{"alg NONE unsigned", enc(`{"alg":"NONE"}`) + "." + enc(goodClaims) + ".", ErrAlgorithm},
		{"alg nOnE unsigned", enc(`{"alg":"nOnE"}`) + "." + enc(goodClaims) + ".", ErrAlgorithm},
		{"alg lower case", withSig(`{"alg":"hs256"}`, "{}"), ErrAlgorithm},
		{"alg with space", withSig(`{"alg":"HS256 "}`, "{}"), ErrAlgorithm},
		{"alg ES256K", withSig(`{"alg":"ES256K"}`, "{}"), ErrAlgorithm},
		{"alg RSA-OAEP", withSig(`{"alg":"RSA-OAEP"}`, "{}"), ErrAlgorithm},
		{"alg Ed448", withSig(`{"alg":"Ed448"}`, "{}"), ErrAlgorithm},

		// crit and b64
		{"crit", withSig(`{"alg":"HS256","crit":["exp"],"exp":1}`, "{}"), ErrCritical},
		{"crit naming a registered header", withSig(`{"alg":"HS256","crit":["alg"]}`, "{}"), ErrCritical},
		{"crit empty", withSig(`{"alg":"HS256","crit":[]}`, "{}"), ErrCritical},
		{"b64", withSig(`{"alg":"HS256","b64":false,"crit":["b64"]}`, "{}"), ErrCritical},
		{"b64 alone", withSig(`{"alg":"HS256","b64":true}`, "{}"), ErrCritical},

		// payload JSON
		{"payload not JSON", enc(hs) + "." + enc("iss=x") + ".c2ln", ErrMalformed},
		{"payload an array", withSig(hs, `[{"iss":"x"}]`), ErrMalformed},
		{"payload null", withSig(hs, `null`), ErrMalformed},
		{"payload duplicate iss", withSig(hs, `{"iss":"a","iss":"b"}`), ErrMalformed},
		{"payload duplicate by escape", withSig(hs, `{"sub":"a","\u0073ub":"b"}`), ErrMalformed},
		{"payload nested duplicate", withSig(hs, `{"x":{"a":1,"a":2}}`), ErrMalformed},
		{"payload duplicate unregistered claim", withSig(hs, `{"client_id":"a","scope":"x","client_id":"b"}`), ErrMalformed},
		{"payload duplicate among few", withSig(hs, manyClaims(10, "c3")), ErrMalformed},
		{"payload duplicate among many", withSig(hs, manyClaims(40, "c7")), ErrMalformed},
		{"payload duplicate iss among many", withSig(hs, manyClaims(40, "iss")), ErrMalformed},
		{"payload BOM", withSig(hs, "\ufeff{}"), ErrMalformed},
		{"payload trailing data", withSig(hs, `{}]`), ErrMalformed},
		{"payload invalid UTF-8", withSig(hs, `{"sub":"`+"a\xe2\x82"+`"}`), ErrMalformed},
		{"payload invalid UTF-8 in a name", withSig(hs, `{"`+"\xfe"+`":1}`), ErrMalformed},
		{"payload lone surrogate", withSig(hs, `{"sub":"\udfff"}`), ErrMalformed},
		{"payload 33 deep", withSig(hs, nest(33)), ErrMalformed},
		{"payload number overflow", withSig(hs, `{"x":1e400}`), ErrMalformed},
		{"payload Infinity", withSig(hs, `{"x":Infinity}`), ErrMalformed},
		{"payload plus sign", withSig(hs, `{"x":+1}`), ErrMalformed},
		{"payload bare fraction", withSig(hs, `{"x":.5}`), ErrMalformed},
		{"payload bad escape", withSig(hs, `{"x":"\x41"}`), ErrMalformed},
		{"payload truncated", withSig(hs, `{"x":"abc`), ErrMalformed},

		// registered claims
		{"iss number", withSig(hs, `{"iss":1}`), ErrClaimType},
		{"iss array", withSig(hs, `{"iss":["a"]}`), ErrClaimType},
		{"sub bool", withSig(hs, `{"sub":true}`), ErrClaimType},
		{"sub null", withSig(hs, `{"sub":null}`), ErrClaimType},
		{"jti number", withSig(hs, `{"jti":12345}`), ErrClaimType},
		{"aud number", withSig(hs, `{"aud":1}`), ErrClaimType},
		{"aud null", withSig(hs, `{"aud":null}`), ErrClaimType},
		{"aud object", withSig(hs, `{"aud":{"a":1}}`), ErrClaimType},
		{"aud empty array", withSig(hs, `{"aud":[]}`), ErrClaimType},
		{"aud non-string entry", withSig(hs, `{"aud":["a",1]}`), ErrClaimType},
		{"aud nested array", withSig(hs, `{"aud":[["a"]]}`), ErrClaimType},
		{"aud 1001 entries", withSig(hs, `{"aud":[`+strings.Repeat(`"a",`, 1000)+`"a"]}`), ErrClaimType},
	}
	for _, claim := range []string{"exp", "nbf", "iat"} {
		for _, v := range []struct{ name, json string }{
			{"string", `"1900000000"`},
			{"RFC 3339", `"2030-01-01T00:00:00Z"`},
			{"negative", `-1`},
			{"negative fraction", `-0.5`},
			{"past year 9999", `253402300800`},
			{"past year 9999 by a fraction", `253402300799.5`},
			{"1e20", `1e20`},
			{"beyond int64", `99999999999999999999`},
			{"null", `null`},
			{"bool", `true`},
			{"array", `[1900000000]`},
			{"object", `{"sec":1900000000}`},
		} {
			cases = append(cases, struct {
				name string
				raw  string
				want error
			}{claim + " " + v.name, withSig(hs, `{"`+claim+`":`+v.json+`}`), ErrClaimType})
		}
		// No float64 holds these, so the parser refuses them before any claim
		// rule: there is no Inf to compare with the range.
		for _, v := range []string{`1e400`, `-1e400`} {
			cases = append(cases, struct {
				name string
				raw  string
				want error
			}{claim + " " + v, withSig(hs, `{"`+claim+`":`+v+`}`), ErrMalformed})
		}
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := Parse(tc.raw, Limits{})
			if testing.Verbose() {
				t.Logf("%v", err)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse = %v, %v; want %v", tok, err, tc.want)
			}
			if tok != nil {
				t.Errorf("Parse returned a token with error %v", err)
			}
			if !strings.HasPrefix(err.Error(), "token: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if len(tc.raw) > 20 && strings.Contains(err.Error(), tc.raw[:20]) {
				t.Errorf("error %q echoes the token", err)
			}
		})
	}
}

// TestParseRejectsDeep raises the size limit so that nesting, not size, is
// what stops 10,000 levels, and checks by the offset that the parser gave up
// at level 33 rather than after reading everything.
func TestParseRejectsDeep(t *testing.T) {
	arrays := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	objects := strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)
	for name, raw := range map[string]string{
		"header arrays":   withSig(`{"alg":"HS256","x":`+arrays+`}`, "{}"),
		"payload arrays":  withSig(hs, `{"x":`+arrays+`}`),
		"payload objects": withSig(hs, objects),
		"unclosed":        withSig(hs, `{"x":`+strings.Repeat("[", 30000)),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(raw, Limits{MaxTokenBytes: 1 << 20})
			var je *jsonError
			if !errors.Is(err, ErrMalformed) || !errors.As(err, &je) || je.kind != kindDepth || je.off > 200 {
				t.Fatalf("Parse: %v, want nesting too deep within the first levels", err)
			}
		})
	}
}

func TestParseLimit(t *testing.T) {
	raw := signed("HS256", goodClaims)
	if _, err := Parse(raw, Limits{MaxTokenBytes: len(raw)}); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	if _, err := Parse(raw, Limits{MaxTokenBytes: len(raw) - 1}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("over the limit: %v, want ErrMalformed", err)
	}
	// With room for them, many segments are still refused, and quickly.
	many := strings.Repeat("a.", 100000) + "a"
	if _, err := Parse(many, Limits{MaxTokenBytes: 1 << 20}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("100k segments: %v, want ErrMalformed", err)
	}
	bigButValid := signed("HS256", `{"pad":"`+strings.Repeat("x", DefaultMaxTokenBytes)+`"}`)
	if _, err := Parse(bigButValid, Limits{MaxTokenBytes: 64 << 10}); err != nil {
		t.Fatalf("raised limit: %v", err)
	}
}

func TestParseAccepts(t *testing.T) {
	cases := []struct {
		name            string
		header, payload string
		check           func(*testing.T, *Token)
	}{
		{"registered claims", `{"alg":"HS256","typ":"JWT","kid":"k1"}`, goodClaims, func(t *testing.T, tok *Token) {
			want := Token{
				Header: Header{Alg: "HS256", Typ: "JWT", Kid: "k1"},
				Issuer: "https://idp.example", HasIssuer: true,
				Subject: "spiffe://example.org/w", HasSubject: true,
				ID: "3f1c7e2a-9b1d-4c55-8a0e-6f1b2c3d4e5f", HasID: true,
				HasAudience: true, AudienceIsArray: true,
				Expiry: 1900000000, HasExpiry: true,
				NotBefore: 1700000000, HasNotBefore: true,
				IssuedAt: 1700000000, HasIssuedAt: true,
				// The known claims client_id and scope, indexed at parse.
				index: lazyIndex{present: 1<<knownClientID | 1<<knownScope, isString: 1<<knownClientID | 1<<knownScope, clientID: "c-123", scope: "read write"},
			}
			got := *tok
			got.claims, got.payload, got.Audience, got.audBuf, got.signingInput, got.signature = nil, "", nil, [4]string{}, nil, nil
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			if fmt.Sprint(tok.Audience) != "[api other]" {
				t.Errorf("Audience = %q", tok.Audience)
			}
			if n, ok := tok.Claims()["n"].(float64); !ok || n != 1.5 {
				t.Errorf("n = %#v, want float64 1.5", tok.Claims()["n"])
			}
			if e, ok := tok.Claims()["exp"].(int64); !ok || e != 1900000000 {
				t.Errorf("Claims[exp] = %#v, want int64", tok.Claims()["exp"])
			}
			nested := tok.Claims()["nested"].(map[string]any)["a"].([]any)
			if fmt.Sprintf("%#v", nested) != "[]interface {}{1, true, interface {}(nil)}" {
				t.Errorf("nested = %#v", nested)
			}
		}},
		{"aud as a string", hs, `{"aud":"api"}`, func(t *testing.T, tok *Token) {
			if !tok.HasAudience || tok.AudienceIsArray || len(tok.Audience) != 1 || tok.Audience[0] != "api" {
				t.Errorf("aud: %+v", tok)
			}
		}},
		{"aud with 1000 entries", hs, `{"aud":[` + strings.Repeat(`"a",`, 999) + `"a"]}`, func(t *testing.T, tok *Token) {
			if len(tok.Audience) != 1000 {
				t.Errorf("len(Audience) = %d", len(tok.Audience))
			}
		}},
		{"empty claims", hs, `{}`, func(t *testing.T, tok *Token) {
			if tok.Claims() == nil || len(tok.Claims()) != 0 || tok.HasIssuer || tok.HasExpiry || tok.HasAudience {
				t.Errorf("empty claims: %+v", tok)
			}
		}},
		{"names are case-sensitive", hs, `{"Sub":"x","ISS":"y","Exp":"soon"}`, func(t *testing.T, tok *Token) {
			if tok.HasSubject || tok.HasIssuer || tok.HasExpiry || tok.Claims()["Sub"] != "x" || tok.Claims()["Exp"] != "soon" {
				t.Errorf("case: %+v", tok)
			}
		}},
		{"escapes and surrogate pairs", `{"alg":"HS256","kid":"\u006b\ud83d\ude00\"\\\/\b\f\n\r\t"}`, `{"sub":"caf\u00e9 \u00E9","x":"😀"}`, func(t *testing.T, tok *Token) {
			if tok.Header.Kid != "k😀\"\\/\b\f\n\r\t" || tok.Subject != "café é" || tok.Claims()["x"] != "😀" {
				t.Errorf("unescaping: kid %q sub %q", tok.Header.Kid, tok.Subject)
			}
		}},
		{"whitespace between JSON tokens", " \t\r\n{ \"alg\" : \"HS256\" } \n", "{ \"exp\" :\t1 ,\"aud\":[ \"a\" , \"b\" ] }\r\n", func(t *testing.T, tok *Token) {
			if !tok.HasExpiry || tok.Expiry != 1 || len(tok.Audience) != 2 {
				t.Errorf("whitespace: %+v", tok)
			}
		}},
		{"ignored key-bearing headers", `{"alg":"HS256","jku":"https://evil.example/jwks","x5u":"https://evil.example/c","jwk":{"kty":"oct","k":"AAAA"},"x5c":["AAAA"]}`, `{}`, func(t *testing.T, tok *Token) {
			if tok.Header.Alg != "HS256" {
				t.Errorf("alg %q", tok.Header.Alg)
			}
		}},
		{"Ed25519 alg name", `{"alg":"Ed25519"}`, `{}`, nil},
		{"32 deep", hs, nest(32), nil},
		{"numbers", hs, `{"a":-0,"b":0,"c":-12,"d":1e2,"e":1E-2,"f":9223372036854775807,"g":9223372036854775808,"h":-9223372036854775808,"exp":0,"nbf":253402300799}`, func(t *testing.T, tok *Token) {
			want := map[string]any{"a": int64(0), "b": int64(0), "c": int64(-12), "d": 100.0, "e": 0.01,
				"f": int64(9223372036854775807), "g": 9223372036854775808.0, "h": int64(-9223372036854775808),
				"exp": int64(0), "nbf": int64(253402300799)}
			for k, v := range want {
				if tok.Claims()[k] != v {
					t.Errorf("%s = %#v, want %#v", k, tok.Claims()[k], v)
				}
			}
			if !tok.HasExpiry || tok.Expiry != 0 || tok.NotBefore != 253402300799 {
				t.Errorf("dates: %+v", tok)
			}
		}},
		{"many header members", manyMembers(40, ""), `{}`, nil},
		{"NUL escape", hs, `{"x":"a\u0000b"}`, func(t *testing.T, tok *Token) {
			if tok.Claims()["x"] != "a\x00b" {
				t.Errorf("x = %q", tok.Claims()["x"])
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := Parse(withSig(tc.header, tc.payload), Limits{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tc.check != nil {
				tc.check(t, tok)
			}
		})
	}
}

// nest is a payload whose innermost value sits depth containers deep.
func nest(depth int) string {
	return `{"x":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`
}

// manyClaims is a payload of n claims c0…, then a repeat of dup.
func manyClaims(n int, dup string) string {
	var b strings.Builder
	b.WriteString(`{"iss":"a"`)
	for i := range n {
		fmt.Fprintf(&b, `,"c%d":%d`, i, i)
	}
	fmt.Fprintf(&b, `,%q:"again"}`, dup)
	return b.String()
}

// manyMembers is an HS256 header with n extra members, plus a repeat of dup
// if it is not "".
func manyMembers(n int, dup string) string {
	var b strings.Builder
	b.WriteString(`{"alg":"HS256"`)
	for i := range n {
		fmt.Fprintf(&b, `,"m%d":%d`, i, i)
	}
	if dup != "" {
		fmt.Fprintf(&b, `,%q:0`, dup)
	}
	b.WriteString("}")
	return b.String()
}

// padded re-encodes the header of raw with '=' padding.
func padded(raw string) string {
	parts := strings.Split(raw, ".")
	for h := `{"alg":"HS256"`; ; h += " " {
		if p := base64.URLEncoding.EncodeToString([]byte(h + "}")); strings.HasSuffix(p, "=") {
			return p + "." + parts[1] + "." + parts[2]
		}
	}
}

// stdAlphabet is a token whose header needs '+' or '/' in standard base64.
func stdAlphabet() string {
	for i := 0; ; i++ {
		h := fmt.Sprintf(`{"alg":"HS256","kid":"%d>>>???"}`, i)
		if s := base64.RawStdEncoding.EncodeToString([]byte(h)); strings.ContainsAny(s, "+/") {
			return s + "." + enc(goodClaims) + ".c2ln"
		}
	}
}

// nonCanonical is a token whose header's last base64 character has non-zero
// bits past the end of the data, which lax decoders ignore.
func nonCanonical() string {
	for h := `{"alg":"HS256"`; ; h += " " {
		s := enc(h + "}")
		if len(s)%4 == 0 {
			continue
		}
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		last := strings.IndexByte(alphabet, s[len(s)-1])
		return s[:len(s)-1] + string(alphabet[last|1]) + "." + enc(goodClaims) + ".c2ln"
	}
}

// TestHeaderTypeIs: typ compares case-insensitively with or without
// "application/", and "" names an absent typ.
func TestHeaderTypeIs(t *testing.T) {
	for _, c := range []struct {
		typ, name string
		want      bool
	}{
		{"at+jwt", "at+jwt", true}, {"AT+JWT", "at+jwt", true}, {"application/at+jwt", "at+jwt", true},
		{"Application/AT+JWT", "at+jwt", true}, {"JWT", "jwt", true}, {"", "", true}, {"application/", "", true},
		{"at+jwt", "jwt", false}, {"application/jwt+x", "jwt", false}, {"xapplication/jwt", "jwt", false}, {"", "jwt", false},
	} {
		if got := (Header{Typ: c.typ}).TypeIs(c.name); got != c.want {
			t.Errorf("Header{Typ: %q}.TypeIs(%q) = %v, want %v", c.typ, c.name, got, c.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = (Header{Typ: "Application/AT+JWT"}).TypeIs("at+jwt") }); n != 0 {
		t.Errorf("TypeIs allocates %v times", n)
	}
}
