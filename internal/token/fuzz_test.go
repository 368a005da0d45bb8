package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/keys"
)

// fuzzSeeds are the adversarial shapes of the unit tests plus a valid token
// of every algorithm, so the fuzzer starts on both sides of every check.
func fuzzSeeds() []string {
	seeds := []string{
		"", ".", "..", "...", "a.b.c", "e30.e30.", "e30.e30.e30",
		withSig(hs, goodClaims),
		withSig(`{"alg":"none"}`, goodClaims),
		enc(`{"alg":"nOnE"}`) + "." + enc(goodClaims) + ".",
		withSig(`{"alg":"HS256","alg":"HS256"}`, "{}"),
		withSig(`{"alg":"HS256","\u0061lg":"HS256"}`, "{}"),
		withSig(`{"alg":"HS256","crit":["b64"],"b64":false}`, "{}"),
		withSig(`{"alg":"HS256","enc":"A128GCM"}`, "{}"),
		withSig("\ufeff"+hs, "{}"),
		withSig(hs, `{"sub":"\ud800"}`),
		withSig(hs, `{"sub":"\ud83d\ude00","x":"a\u0000"}`),
		withSig(hs, `{"aud":[],"exp":1.0}`),
		withSig(hs, `{"aud":"a","exp":"2030-01-01T00:00:00Z"}`),
		withSig(hs, `{"exp":1767225600.5,"nbf":1.7672256005e9,"iat":1767225600.0}`),
		withSig(hs, `{"exp":253402300799.5,"nbf":-0.5,"iat":-0.0}`),
		withSig(hs, `{"exp":0.0000000019,"iat":5e-324,"nbf":1e20}`),
		withSig(hs, `{"x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`),
		withSig(hs, `{"x":-0,"y":1e400,"z":01}`),
		withSig(`{"alg":"RSA-OAEP","enc":"A256GCM"}`, "{}") + ".aaaa.bbbb",
		padded(signed("HS256", goodClaims)),
		nonCanonical(),
		stdAlphabet(),
		strings.Repeat("a.", 1000) + "a",
	}
	for _, alg := range allAlgs {
		seeds = append(seeds, signed(alg, goodClaims))
	}
	return seeds
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(checkParse)
}

// FuzzParts fuzzes the decoded header and payload, which FuzzParse reaches
// only through base64, so the fuzzer spends its time on the JSON and the
// claim rules.
func FuzzParts(f *testing.F) {
	f.Add([]byte(`{"alg":"HS256","kid":"k"}`), []byte(goodClaims))
	f.Add([]byte(`{"alg":"EdDSA","typ":"JWT"}`), []byte(`{"aud":"a","exp":1,"nbf":2,"iat":3}`))
	f.Add([]byte(`{"alg":"EdDSA","typ":"JWT"}`), []byte(`{"aud":"a","exp":1767225600.1,"nbf":2e0,"iat":3.5E-1}`))
	f.Add([]byte(`{"alg":"ES256","crit":[]}`), []byte(`{"aud":["a",1]}`))
	f.Add([]byte(`{"alg":"none"}`), []byte(`{"sub":"\ud800"}`))
	f.Fuzz(func(t *testing.T, header, payload []byte) {
		if len(header) == 0 || len(payload) == 0 {
			return
		}
		checkParse(t, withSig(string(header), string(payload)))
	})
}

var (
	fuzzCandidates = sync.OnceValue(func() []*keys.Key {
		return []*keys.Key{pubFor("RS256"), pubFor("ES256"), pubFor("ES384"), pubFor("ES512"), pubFor("EdDSA"), pubFor("HS256")}
	})
	fuzzNow = time.Unix(1_800_000_000, 0)
)

// checkParse asserts what must hold of any input: a known error, or a token
// that is self-consistent, re-encodes to itself, and verifies without panic.
func checkParse(t *testing.T, raw string) {
	tok, err := Parse(raw, Limits{})
	// A token parsed through its Digest reads and verifies the same.
	d := DigestOf(raw)
	dtok, derr := d.Parse(Limits{})
	if fmt.Sprint(err) != fmt.Sprint(derr) {
		t.Fatalf("Parse: %v; Digest.Parse: %v", err, derr)
	}
	if err == nil {
		verr, dverr := tok.Verify(fuzzCandidates()), dtok.Verify(fuzzCandidates())
		if fmt.Sprint(verr) != fmt.Sprint(dverr) {
			t.Fatalf("Verify: %v; after Digest.Parse: %v", verr, dverr)
		}
	}
	if err != nil {
		if tok != nil {
			t.Fatal("token and error")
		}
		if n := countIs(err, ErrMalformed, ErrAlgorithm, ErrCritical, ErrClaimType); n != 1 {
			t.Fatalf("error %v matches %d parse sentinels", err, n)
		}
		return
	}
	checkConsistent(t, tok)
	checkCompact(t, tok)

	// Re-encoding the claims with encoding/json and parsing again must
	// give the same token: what we accept has one meaning.
	claims, err := json.Marshal(tok.Claims())
	if err != nil {
		t.Fatalf("claims do not marshal: %v", err)
	}
	parts := strings.Split(raw, ".")
	again, err := Parse(parts[0]+"."+enc(string(claims))+"."+parts[2], Limits{MaxTokenBytes: 1 << 20})
	if err != nil {
		t.Fatalf("re-encoded token rejected: %v\nclaims %s", err, claims)
	}
	if d := diff(tok.Claims(), again.Claims()); d != "" {
		t.Fatalf("re-encoded claims differ: %s", d)
	}
	if tok.Issuer != again.Issuer || tok.Expiry != again.Expiry || fmt.Sprint(tok.Audience) != fmt.Sprint(again.Audience) ||
		tok.AudienceIsArray != again.AudienceIsArray || tok.Header != again.Header ||
		!tok.ExpiryTime().Equal(again.ExpiryTime()) || !tok.NotBeforeTime().Equal(again.NotBeforeTime()) ||
		!tok.IssuedAtTime().Equal(again.IssuedAtTime()) {
		t.Fatalf("re-encoded registered claims differ")
	}

	if err := tok.Verify(fuzzCandidates()); err != nil && countIs(err, ErrNoKey, ErrSignature) != 1 {
		t.Fatalf("Verify: %v", err)
	}
	_ = tok.ValidateTime(fuzzNow, time.Minute, true)
}

// FuzzNumericDate checks the split of any float64 NumericDate into seconds
// and nanoseconds, which FuzzParts reaches only through JSON literals.
func FuzzNumericDate(f *testing.F) {
	for _, v := range []float64{0, 0.5, 1e-9, 1.9e-9, 5e-324, 99999999.99999999, 1e8, 1767225600.1,
		1767225600.9999999, maxNumericDate, maxNumericDate - 0.5, math.Nextafter(maxNumericDate, 0)} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		sec, nsec, ok, err := dateClaim(func(string) (any, bool) { return v, true }, "exp")
		if !(v >= 0 && v <= maxNumericDate) {
			if ok || !errors.Is(err, ErrClaimType) {
				t.Fatalf("%v: ok %v, err %v; want ErrClaimType", v, ok, err)
			}
			return
		}
		if !ok || err != nil || nsec < 0 || nsec >= 1e9 {
			t.Fatalf("%v: %d s %d ns, ok %v, err %v", v, sec, nsec, ok, err)
		}
		if float64(sec) != math.Floor(v) {
			t.Fatalf("%v: %d s, want the floor", v, sec)
		}
		checkDate(t, "exp", v, sec, time.Unix(sec, int64(nsec)))
	})
}

func countIs(err error, targets ...error) int {
	n := 0
	for _, t := range targets {
		if errors.Is(err, t) {
			n++
		}
	}
	return n
}

// checkConsistent checks the registered fields against Claims.
func checkConsistent(t *testing.T, tok *Token) {
	t.Helper()
	if tok.Claims() == nil || !allowedAlg(tok.Header.Alg) || len(tok.signature) == 0 {
		t.Fatalf("incomplete token: %+v", tok)
	}
	for name, got := range map[string]struct {
		v   any
		has bool
	}{
		"iss": {tok.Issuer, tok.HasIssuer}, "sub": {tok.Subject, tok.HasSubject}, "jti": {tok.ID, tok.HasID},
	} {
		v, ok := tok.Claims()[name]
		if ok != got.has || ok && v != got.v {
			t.Fatalf("%s: field %v (%v), claim %#v (%v)", name, got.v, got.has, v, ok)
		}
	}
	for _, name := range dateClaims {
		sec, has, at := dateOf(tok, name)
		v, ok := tok.Claims()[name]
		if ok != has || !ok && (sec != 0 || !at.IsZero()) {
			t.Fatalf("%s: field %d (%v), exact %s, claim %#v (%v)", name, sec, has, at, v, ok)
		}
		if ok {
			checkDate(t, name, v, sec, at)
		}
	}
	if _, ok := tok.Claims()["aud"]; ok != tok.HasAudience || ok && len(tok.Audience) == 0 {
		t.Fatalf("aud: %v / %v", tok.Audience, tok.Claims()["aud"])
	}
}

// FuzzJSON compares the strict parser with encoding/json: whatever we accept,
// encoding/json must accept and read the same way; whatever we call a syntax
// error, encoding/json must reject.
func FuzzJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, ` {"a":1} `, `{"a":[1,2.5,-0,1e3,"x",true,false,null,{}]}`, `{"a":"\u00e9\ud83d\ude00\n\/"}`,
		`{"a":1,"a":2}`, `{"a":01}`, `{"a":1.}`, `{"a":.1}`, `{"a":-}`, `{"a":1e}`, `{"a":"\ud800"}`, `{"a":"\x"}`,
		"{\"a\":\"\xff\"}", "\ufeff{}", `[]`, `"x"`, `{"a":1}x`, `{"a":1,}`, `{,}`, `{"a" 1}`, `{"a":tru}`,
		`{"a":1e400}`, `{"a":123456789012345678901234567890}`, goodClaims, nest(32), nest(33),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ours, err := parseObject(string(data))
		if err != nil {
			var je *jsonError
			if !errors.As(err, &je) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if je.kind == kindSyntax && json.Valid(data) {
				t.Fatalf("syntax error %v, but encoding/json accepts %q", err, data)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted what encoding/json rejects: %q", data)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var theirs any
		if err := dec.Decode(&theirs); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		if d := diff(ours, theirs); d != "" {
			t.Fatalf("%s in %q", d, data)
		}
	})
}

// diff compares JSON values, reading json.Number and our int64/float64 by
// value so that 2 and 2.0 after a round trip compare equal.
func diff(a, b any) string {
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return fmt.Sprintf("object %v vs %v", a, b)
		}
		for k, v := range a {
			if d := diff(v, bm[k]); d != "" {
				return k + ": " + d
			}
		}
		return ""
	case []any:
		bs, ok := b.([]any)
		if !ok || len(a) != len(bs) {
			return fmt.Sprintf("array %v vs %v", a, b)
		}
		for i := range a {
			if d := diff(a[i], bs[i]); d != "" {
				return fmt.Sprintf("[%d]: %s", i, d)
			}
		}
		return ""
	case int64, float64:
		x, y := num(a), num(b)
		if x != y || x == "" {
			return fmt.Sprintf("number %#v vs %#v", a, b)
		}
		return ""
	}
	if a != b {
		return fmt.Sprintf("%#v vs %#v", a, b)
	}
	return ""
}

// num spells a number canonically: integers exactly, other floats shortest.
func num(v any) string {
	switch v := v.(type) {
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return num(i)
		}
		if f, err := v.Float64(); err == nil {
			return num(f)
		}
	}
	return ""
}

// FuzzScanPayload holds scanPayload, which vets a payload without building
// it, to the reading it stands for: parsing the payload into a map and
// lifting the registered claims from it. Both must give the same error, or
// the same registered claims and index of the known ones.
func FuzzScanPayload(f *testing.F) {
	for _, s := range []string{
		goodClaims, `{}`, `{"a":1,"a":2}`, `{"n":{"a":1,"a":2}}`, `{"iss":1,"x":}`, `{"iss":1,"sub":true}`,
		`{"aud":[]}`, `{"aud":["a",1,{"b":2}]}`, `{"aud":{}}`, `{"aud":"\u00e9"}`, `{"exp":-1}`, `{"exp":"1"}`,
		`{"exp":1e400}`, `{"exp":1.5,"nbf":2e0,"iat":null}`, `{"client_id":"c","scope":"a b"}`,
		`{"client_id":1,"scope":["a"],"cnf":{"jkt":"x"}}`, `{"sub":"\ud800"}`, `{"jti":"a\"b"}`, nest(32), nest(33),
		`{"iss":"a","iss":1}`, `{"a":[1,2,[3,[4]]],"b":-0.0e-0}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		scanned := &Token{payload: string(data)}
		serr := scanned.scanPayload()
		m, err := parseObject(string(data))
		var mapped *Token
		if err != nil {
			err = fmt.Errorf("%w: payload: %w", ErrMalformed, err)
		} else {
			mapped, err = FromClaims(m)
		}
		if fmt.Sprint(serr) != fmt.Sprint(err) {
			t.Fatalf("%q: scanned %v, mapped %v", data, serr, err)
		}
		if err != nil {
			return
		}
		// The index is the scan's own; the loop below checks it.
		got, want := *scanned, *mapped
		got.payload, want.claims, want.index = "", nil, got.index
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: scanned %+v, mapped %+v", data, got, want)
		}
		for i, name := range knownClaims {
			v, ok := m[name]
			s, isString := v.(string)
			if scanned.index.present&(1<<i) != 0 != ok {
				t.Fatalf("%q: %s present %v in the index", data, name, !ok)
			}
			if i != knownClientID && i != knownScope {
				continue
			}
			got := scanned.index.scope
			if i == knownClientID {
				got = scanned.index.clientID
			}
			if scanned.index.isString&(1<<i) != 0 != isString || got != s {
				t.Fatalf("%q: %s indexed as %q (string %v), claim %#v", data, name, got, !isString, v)
			}
		}
	})
}
