package introspect

import (
	"errors"
	"reflect"
	"testing"
)

// TestParseResponseStrict: every member a rule reads has its registered
// type, or the response is refused whole; inactive is inactive whatever
// else the response says.
func TestParseResponseStrict(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		// ok and inactive say what the answer is; neither: malformed.
		ok, inactive bool
	}{
		{name: "active with every member", ok: true, body: `{"active":true,"scope":"a b","client_id":"app","username":"u","token_type":"Bearer","exp":1900000060,"iat":1899999000,"nbf":1899999000,"sub":"user-1","aud":["api","other"],"iss":"https://as.example.com","jti":"j","cnf":{"jkt":"x"},"ext":{"n":1}}`},
		{name: "active alone", ok: true, body: `{"active":true}`},
		{name: "fractional exp", ok: true, body: `{"active":true,"exp":1900000060.5}`},
		{name: "inactive", inactive: true, body: `{"active":false}`},
		{name: "inactive with junk members", inactive: true, body: `{"active":false,"exp":"soon","scope":["a"]}`},
		{name: "active as a string", body: `{"active":"true"}`},
		{name: "active as a number", body: `{"active":1}`},
		{name: "active null", body: `{"active":null}`},
		{name: "no active", body: `{"scope":"a"}`},
		{name: "duplicate active", body: `{"active":false,"active":true}`},
		{name: "exp as a string", body: `{"active":true,"exp":"1900000060"}`},
		{name: "exp negative", body: `{"active":true,"exp":-1}`},
		{name: "iat as a bool", body: `{"active":true,"iat":true}`},
		{name: "nbf as an object", body: `{"active":true,"nbf":{}}`},
		{name: "aud as a number", body: `{"active":true,"aud":7}`},
		{name: "aud array with a number", body: `{"active":true,"aud":["api",7]}`},
		{name: "aud empty array", body: `{"active":true,"aud":[]}`},
		{name: "scope as an array", body: `{"active":true,"scope":["a","b"]}`},
		{name: "client_id as a number", body: `{"active":true,"client_id":12}`},
		{name: "sub as a number", body: `{"active":true,"sub":12}`},
		{name: "iss as an array", body: `{"active":true,"iss":["x"]}`},
		{name: "jti null", body: `{"active":true,"jti":null}`},
		{name: "cnf as a string", body: `{"active":true,"cnf":"jkt"}`},
		{name: "an array", body: `[{"active":true}]`},
		{name: "two objects", body: `{"active":true}{"active":true}`},
		{name: "trailing garbage", body: `{"active":true} x`},
		{name: "HTML", body: `<html><body>Login</body></html>`},
		{name: "empty", body: ``},
		{name: "invalid UTF-8", body: "{\"active\":true,\"sub\":\"\xff\"}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := parseResponse([]byte(tc.body))
			switch {
			case tc.ok:
				if err != nil || tok == nil {
					t.Fatalf("parseResponse = %v, %v; want an active token", tok, err)
				}
			case tc.inactive:
				if !errors.Is(err, ErrInactive) {
					t.Fatalf("parseResponse error = %v, want ErrInactive", err)
				}
			default:
				if err == nil || errors.Is(err, ErrInactive) {
					t.Fatalf("parseResponse error = %v, want a malformed-response error", err)
				}
			}
		})
	}
}

// TestParseResponseClaims: the token built from a response carries its
// members typed as a JWT's.
func TestParseResponseClaims(t *testing.T) {
	tok, err := parseResponse([]byte(`{"active":true,"scope":"reports read","client_id":"app","sub":"user-1","aud":"api","iss":"https://as.example.com","exp":1900000060,"cnf":{"jkt":"abc"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Subject != "user-1" || tok.Issuer != testIssuer || !tok.HasExpiry || tok.Expiry != 1900000060 {
		t.Errorf("sub, iss, exp = %q, %q, %d", tok.Subject, tok.Issuer, tok.Expiry)
	}
	if !reflect.DeepEqual(tok.Audience, []string{"api"}) {
		t.Errorf("aud = %q", tok.Audience)
	}
	if tok.Claims()["client_id"] != "app" || tok.Claims()["scope"] != "reports read" || tok.Claims()["active"] != true {
		t.Errorf("claims = %v", tok.Claims())
	}
	if cnf, _ := tok.Claims()["cnf"].(map[string]any); cnf["jkt"] != "abc" {
		t.Errorf("cnf = %v", tok.Claims()["cnf"])
	}
}

// FuzzParseResponse: no response body panics the parser, and whatever it
// accepts as active has its registered members typed.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		`{"active":true}`, `{"active":false}`, `{"active":"true"}`,
		`{"active":true,"scope":"a b","aud":["x"],"exp":1.5,"cnf":{"jkt":"k"}}`,
		`{"active":true,"aud":[1]}`, `[]`, `{"active":true,"active":false}`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := parseResponse(body)
		if err != nil {
			if tok != nil {
				t.Fatal("a token with an error")
			}
			return
		}
		if tok.Claims()["active"] != true {
			t.Fatalf("accepted active = %v", tok.Claims()["active"])
		}
		if v, ok := tok.Claims()["scope"]; ok {
			if _, str := v.(string); !str {
				t.Fatalf("accepted scope %T", v)
			}
		}
		if v, ok := tok.Claims()["cnf"]; ok {
			if _, obj := v.(map[string]any); !obj {
				t.Fatalf("accepted cnf %T", v)
			}
		}
		if _, ok := tok.Claims()["aud"]; ok && len(tok.Audience) == 0 {
			t.Fatal("accepted aud without an audience")
		}
	})
}
