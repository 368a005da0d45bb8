package token

import (
	"fmt"
	"strings"
	"testing"
)

// checkCompact asserts that the view of tok's Compact is tok: every field,
// each claim read one at a time, and the claims map built lazily.
func checkCompact(t *testing.T, tok *Token) {
	t.Helper()
	c, ok := tok.Compact()
	if !ok {
		if len(tok.payload) < 0xffff-200 {
			t.Fatalf("a parsed token of %d payload bytes was not compacted", len(tok.payload))
		}
		return
	}
	var v Token
	c.View(&v)
	want, got := *tok, v
	want.claims, want.payload, want.audBuf, want.signingInput, want.signature = nil, "", [4]string{}, nil, nil
	got.claims, got.payload, got.audBuf = nil, "", [4]string{}
	if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
		t.Fatalf("view differs:\n got %#v\nwant %#v", got, want)
	}
	if iss, has := c.Issuer(); iss != tok.Issuer || has != tok.HasIssuer || c.Kid() != tok.Header.Kid {
		t.Fatalf("Issuer %q %v, Kid %q", iss, has, c.Kid())
	}
	for name, val := range tok.Claims() {
		g, ok := v.Claim(name)
		if !ok || diff(val, g) != "" {
			t.Fatalf("Claim(%q) = %#v, %v; want %#v", name, g, ok, val)
		}
		if !v.HasClaim(name) {
			t.Fatalf("HasClaim(%q) false", name)
		}
		s, isStr := val.(string)
		if gs, gok := v.ClaimString(name); gs != s || gok != isStr {
			t.Fatalf("ClaimString(%q) = %q, %v; want %q, %v", name, gs, gok, s, isStr)
		}
	}
	for _, name := range knownClaims {
		val, has := tok.Claims()[name]
		s, isStr := val.(string)
		g, gok := v.Claim(name)
		gs, gsok := v.ClaimString(name)
		if v.HasClaim(name) != has || gok != has || diff(val, g) != "" || gs != s || gsok != isStr {
			t.Fatalf("known claim %s: %#v %v, view %#v %v / %q %v", name, val, has, g, gok, gs, gsok)
		}
	}
	if _, ok := v.Claim("\x00absent"); ok || v.HasClaim("\x00absent") {
		t.Fatal("an absent claim is found")
	}
	if v.claims != nil {
		t.Fatal("reading single claims built the map")
	}
	if d := diff(tok.Claims(), v.Claims()); d != "" {
		t.Fatalf("lazy claims differ: %s", d)
	}
}

func TestCompactView(t *testing.T) {
	for _, tc := range []struct{ header, payload string }{
		{`{"alg":"ES256","kid":"k1","typ":"at+jwt"}`, `{"iss":"https://idp","sub":"u","aud":"api","exp":1900000000,"scope":"a b","client_id":"c"}`},
		{`{"alg":"ES256"}`, `{"client_id":"\u0063-1","scope":5,"scp":["a"],"cnf":{"jkt":"x"},"nonce":"n","at_hash":"h","acr":"gold","auth_time":1.5,"token_type":"t","azp":null}`},
		{`{"alg":"ES256"}`, `{"client_id":7,"scope":"x\ty"}`},
		{`{"alg":"ES256"}`, `{"aud":["a","b\u0063","a"],"exp":1.5,"o":{"x":[1,{}]}}`},
		{`{"alg":"ES256"}`, `{"aud":["a","b\u0063"],"exp":1767225600.1,"nbf":2,"iat":3.5,"cnf":{"jkt":"x"},"n":null,"arr":[1,"}",[{"a":"]"}]],"esc\"aped":"v\\"}`},
		{`{"alg":"ES256","kid":"\u006b"}`, `{"iss":"i\u0073s","sub":"\u00e9","jti":"j","x":true, "y" : false , "z":-1e3}`},
		{`{"alg":"EdDSA"}`, `{}`},
	} {
		tok, err := Parse(withSig(tc.header, tc.payload), Limits{})
		if err != nil {
			t.Fatalf("%s: %v", tc.payload, err)
		}
		checkCompact(t, tok)
	}
}

// TestCompactLarge: a payload past 64 KiB is not compacted, so a cache skips
// it instead of truncating offsets.
func TestCompactLarge(t *testing.T) {
	tok, err := Parse(withSig(`{"alg":"ES256"}`, `{"x":"`+strings.Repeat("a", 70_000)+`"}`), Limits{MaxTokenBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tok.Compact(); ok {
		t.Fatal("a 70 KB payload was compacted")
	}
}

func TestCompactViewAllocs(t *testing.T) {
	tok, err := Parse(withSig(`{"alg":"ES256","kid":"k1","typ":"at+jwt"}`, `{"iss":"https://idp","sub":"u","aud":"api","exp":1900000000,"scope":"a b","client_id":"c"}`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := tok.Compact()
	var v Token
	if n := testing.AllocsPerRun(100, func() {
		c.View(&v)
		_, _ = v.ClaimString("client_id")
		_, _ = v.ClaimString("scope")
		_ = v.HasClaim("cnf")
	}); n != 0 {
		t.Fatalf("%v allocations, want 0", n)
	}
}

func TestWithin(t *testing.T) {
	js := `{"alg":"ES256"}{"iss":"https://idp","sub":"x"}`
	payload := js[15:]
	iss := payload[8:19]
	for _, c := range []struct {
		name string
		s    string
		off  int
		in   bool
	}{
		{"a substring", iss, 8, true},
		{"the whole", payload, 0, true},
		{"the last byte", payload[len(payload)-1:], len(payload) - 1, true},
		{"empty", "", 0, true},
		{"equal bytes elsewhere", strings.Clone(iss), 0, false},
		{"the header before it", js[8:13], 0, false},
		{"overlapping its start", js[10:20], 0, false},
		{"longer than it", js, 0, false},
	} {
		if off, in := within(c.s, payload); in != c.in || (in && off != c.off) {
			t.Errorf("%s: within = %d, %v; want %d, %v", c.name, off, in, c.off, c.in)
		}
	}
}
