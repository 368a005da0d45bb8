package adversarial_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/internal/check"
)

// prepend adds members to the front of a JSON object's text.
func prepend(obj, members string) string { return "{" + members + "," + obj[1:] }

// nonCanonical sets an unused low bit of the last character of the
// token's signature segment: a lenient decoder yields the same bytes.
func nonCanonical(t *testing.T, tok string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	if len(sig)%4 == 0 {
		t.Fatalf("signature segment of %d characters has no unused bits", len(sig))
	}
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	return tok[:len(tok)-1] + string(alphabet[last|1])
}

// TestEncodingAttacks: every token here carries the ec issuer's genuine
// signature over exactly its bytes (or is a genuine token re-spelt), so
// the deny comes from the strict parser: one spelling per token, one
// reading per claim. Nothing is fetched.
func TestEncodingAttacks(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k := testKeys()
	const hdr = `{"alg":"ES256","kid":"ec-1"}`
	tok := func(header, payload string) string { return rawJWS("ES256", k.ec, header, payload) }
	pl := func() string { return js(h.ecClaims()) }
	malformed := invalidClient(check.ReasonMalformedToken)
	h.mustAllow(t, assertionReq(tok(hdr, pl())))

	// The standard-alphabet attack needs a - or _ to re-spell: about one
	// token in twelve has neither, so sign again until one has.
	good := signEC(h.ecClaims())
	for i := 0; !strings.ContainsAny(good, "-_"); i++ {
		if i == 100 {
			t.Fatal("100 tokens without a - or _ to re-spell")
		}
		good = signEC(h.ecClaims())
	}
	i1, i2 := strings.IndexByte(good, '.'), strings.LastIndexByte(good, '.')
	hSeg, pSeg, sSeg := good[:i1], good[i1+1:i2], good[i2+1:]
	std := strings.NewReplacer("-", "+", "_", "/").Replace(good)

	attacks := []attack{
		// Duplicate member names: which one wins differs between
		// parsers, so two components could read two different tokens.
		{name: "dup alg", req: assertionReq(tok(`{"alg":"ES256","kid":"ec-1","alg":"none"}`, pl())), want: malformed},
		{name: "dup alg, none first", req: assertionReq(tok(`{"alg":"none","alg":"ES256","kid":"ec-1"}`, pl())), want: malformed},
		{name: "dup kid", req: assertionReq(tok(`{"alg":"ES256","kid":"ec-1","kid":"rsa-1"}`, pl())), want: malformed},
		{name: "dup alg, escaped name", req: assertionReq(tok(`{"alg":"ES256","kid":"ec-1","\u0061lg":"none"}`, pl())), want: malformed},
		{name: "dup sub", req: assertionReq(tok(hdr, prepend(pl(), `"sub":"admin"`))), want: malformed},
		{name: "dup iss", req: assertionReq(tok(hdr, prepend(pl(), `"iss":"rsa-client"`))), want: malformed},
		{name: "dup exp", req: assertionReq(tok(hdr, prepend(pl(), `"exp":9999999999`))), want: malformed},
		{name: "dup aud", req: assertionReq(tok(hdr, prepend(pl(), `"aud":"https://elsewhere.example/token"`))), want: malformed},
		{name: "dup jti", req: assertionReq(tok(hdr, prepend(pl(), `"jti":"fixed"`))), want: malformed},
		{name: "dup sub, escaped name", req: assertionReq(tok(hdr, prepend(pl(), `"\u0073ub":"admin"`))), want: malformed},
		{name: "dup sub, escaped solidus-free form", req: assertionReq(tok(hdr, prepend(pl(), `"s\u0075b":"admin"`))), want: malformed},
		{name: "dup member in a nested object", req: assertionReq(tok(hdr, prepend(pl(), `"client_type":{"a":1,"a":2}`))), want: malformed},

		// Case variants are different names: only the exact ones count.
		{name: "ALG only", req: assertionReq(tok(`{"ALG":"ES256","kid":"ec-1"}`, pl())), want: invalidClient(check.ReasonAlgorithm)},
		{name: "Alg only", req: assertionReq(tok(`{"Alg":"ES256","kid":"ec-1"}`, pl())), want: invalidClient(check.ReasonAlgorithm)},
		{name: "Sub instead of sub", req: assertionReq(tok(hdr, strings.Replace(pl(), `"sub":`, `"Sub":`, 1))), want: invalidClient(check.ReasonSubject)},
		{name: "ISS instead of iss", req: assertionReq(tok(hdr, strings.Replace(pl(), `"iss":`, `"ISS":`, 1))), want: invalidClient(check.ReasonIssuer)},
		{name: "Exp instead of exp", req: assertionReq(tok(hdr, strings.Replace(pl(), `"exp":`, `"Exp":`, 1))), want: invalidClient(check.ReasonExpMissing)},
		{name: "AUD instead of aud", req: assertionReq(tok(hdr, strings.Replace(pl(), `"aud":`, `"AUD":`, 1))), want: invalidClient(check.ReasonAudience)},
		{name: "Jti instead of jti", req: assertionReq(tok(hdr, strings.Replace(pl(), `"jti":`, `"Jti":`, 1))), want: invalidClient(check.ReasonJTIMissing)},

		// One spelling of the bytes: no padding, the URL alphabet only,
		// canonical trailing bits, no whitespace, nothing after.
		{name: "padded signature", req: assertionReq(good + "=="), want: malformed},
		{name: "padded header", req: assertionReq(hSeg + "=." + pSeg + "." + sSeg), want: malformed},
		{name: "padded payload", req: assertionReq(hSeg + "." + pSeg + "=." + sSeg), want: malformed},
		{name: "standard alphabet", req: assertionReq(std), want: malformed},
		{name: "non-canonical trailing bits", req: assertionReq(nonCanonical(t, good)), want: malformed},
		{name: "leading space", req: assertionReq(" " + good), want: malformed},
		{name: "trailing space", req: assertionReq(good + " "), want: malformed},
		{name: "tab inside", req: assertionReq(hSeg + ".\t" + pSeg + "." + sSeg), want: malformed},
		{name: "newline inside a segment", req: assertionReq(hSeg + "." + pSeg[:10] + "\n" + pSeg[10:] + "." + sSeg), want: malformed},
		{name: "CRLF inside a segment", req: assertionReq(hSeg + "." + pSeg[:10] + "\r\n" + pSeg[10:] + "." + sSeg), want: malformed},
		{name: "trailing dot", req: assertionReq(good + "."), want: malformed},
		{name: "fourth segment", req: assertionReq(good + ".e30"), want: malformed},
		{name: "leading dot", req: assertionReq("." + good), want: malformed},
		{name: "double dot", req: assertionReq(hSeg + ".." + pSeg + "." + sSeg), want: malformed},
		{name: "trailing NUL", req: assertionReq(good + "\x00"), want: malformed},
		{name: "trailing token", req: assertionReq(good + " " + good), want: malformed},
		{name: "token twice", req: assertionReq(good + good), want: malformed},

		// Invalid UTF-8 and byte-order marks, signed as they stand.
		{name: "invalid UTF-8 in a claim", req: assertionReq(tok(hdr, prepend(pl(), "\"name\":\"\xff\""))), want: malformed},
		{name: "overlong UTF-8 solidus", req: assertionReq(tok(hdr, prepend(pl(), "\"name\":\"\xc0\xaf\""))), want: malformed},
		{name: "UTF-8 surrogate", req: assertionReq(tok(hdr, prepend(pl(), "\"name\":\"\xed\xa0\x80\""))), want: malformed},
		{name: "lone surrogate escape", req: assertionReq(tok(hdr, prepend(pl(), `"name":"\ud800"`))), want: malformed},
		{name: "invalid UTF-8 in a member name", req: assertionReq(tok(hdr, prepend(pl(), "\"su\xffb\":\"admin\""))), want: malformed},
		{name: "invalid UTF-8 in kid", req: assertionReq(tok("{\"alg\":\"ES256\",\"kid\":\"ec-1\xff\"}", pl())), want: malformed},
		{name: "BOM before the header", req: assertionReq(tok("\ufeff"+hdr, pl())), want: malformed},
		{name: "BOM before the payload", req: assertionReq(tok(hdr, "\ufeff"+pl())), want: malformed},
		{name: "BOM before the token", req: assertionReq("\ufeff" + good), want: malformed},

		// One JSON object, nothing else.
		{name: "payload is an array", req: assertionReq(tok(hdr, "["+pl()+"]")), want: malformed},
		{name: "payload is null", req: assertionReq(tok(hdr, "null")), want: malformed},
		{name: "payload is a string", req: assertionReq(tok(hdr, js(pl()))), want: malformed},
		{name: "two payload objects", req: assertionReq(tok(hdr, pl()+pl())), want: malformed},
		{name: "trailing garbage", req: assertionReq(tok(hdr, pl()+" x")), want: malformed},
		{name: "trailing comma", req: assertionReq(tok(hdr, strings.TrimSuffix(pl(), "}")+",}")), want: malformed},
		{name: "comment", req: assertionReq(tok(hdr, prepend(pl(), `/* c */ "name":"a"`))), want: malformed},
		{name: "single quotes", req: assertionReq(tok(hdr, prepend(pl(), `'name':'a'`))), want: malformed},
		{name: "NaN", req: assertionReq(tok(hdr, prepend(pl(), `"n":NaN`))), want: malformed},
		{name: "raw control character", req: assertionReq(tok(hdr, prepend(pl(), "\"name\":\"a\x01\""))), want: malformed},
		{name: "header is empty", req: assertionReq(tok("", pl())), want: malformed},
		{name: "header is {}", req: assertionReq(tok("{}", pl())), want: invalidClient(check.ReasonAlgorithm)},
	}
	h.run(t, attacks)

	// The same re-spellings in an Authorization header: padding and the
	// standard alphabet are b64token characters, so they reach the token
	// parser (401); whitespace splits the credential (400).
	login := signLogin(h.loginClaims())
	h.run(t, []attack{
		{name: "bearer padded", req: apiReq("Bearer " + login + "=="), want: invalidToken(check.ReasonMalformedToken)},
		{name: "bearer standard alphabet", req: apiReq("Bearer " + strings.NewReplacer("-", "+", "_", "/").Replace(login) + "+/"), want: invalidToken(check.ReasonMalformedToken)},
		{name: "bearer non-canonical", req: apiReq("Bearer " + nonCanonical(t, login)), want: invalidToken(check.ReasonMalformedToken)},
		{name: "bearer trailing dot", req: apiReq("Bearer " + login + "."), want: invalidToken(check.ReasonMalformedToken)},
		{name: "bearer space inside", req: apiReq("Bearer " + login[:20] + " " + login[20:]), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "bearer BOM", req: apiReq("Bearer \ufeff" + login), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "bearer NUL", req: apiReq("Bearer " + login + "\x00"), want: invalidRequest(check.ReasonMalformedReq)},
	})
	// In a form body the value is decoded once; an encoded space, BOM or
	// NUL stays in the token.
	enc := func(s string) req {
		return tokenReq("grant_type=client_credentials&client_assertion_type=" + url.QueryEscape(assertionURN) + "&client_assertion=" + s)
	}
	h.run(t, []attack{
		{name: "form +", req: enc("+" + good), want: malformed},
		{name: "form %20", req: enc(good + "%20"), want: malformed},
		{name: "form %00", req: enc(good + "%00"), want: malformed},
		{name: "form %EF%BB%BF", req: enc("%EF%BB%BF" + good), want: malformed},
		{name: "form %0A", req: enc(hSeg + "." + pSeg + "%0A." + sSeg), want: malformed},
	})
}
