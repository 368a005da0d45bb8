package policy

import (
	"context"
	"maps"
	"testing"
)

func compileTestExpr(t *testing.T, src string) *Expr {
	t.Helper()
	env, err := newEnv()
	if err != nil {
		t.Fatal(err)
	}
	e, _, msg := compileExpr(env, src, false)
	if msg != "" {
		t.Fatalf("compile %q: %s", src, msg)
	}
	return e
}

func TestHeaderValues(t *testing.T) {
	vars := &Vars{
		Claims: map[string]any{
			"client_type": "ai-agent", "n": int64(42), "f": 1.5, "roles": []any{"a", "b"},
			"crlf": "x\r\nx-evil: 1", "nul": "a\x00b", "empty": "", "nested": map[string]any{"k": "v"},
		},
		ClientID:   "client-1",
		SpiffeID:   "spiffe://example.org/ns/a/sa/b",
		Scopes:     []string{"read", "write"},
		Issuer:     "login",
		Credential: "bearer",
		Request:    &Request{Method: "GET", Host: "api.example.com", Path: "/r", Query: "a=1", Headers: map[string]string{"x-request-id": "rid"}},
	}
	cases := []struct {
		expr  string
		want  string
		unset bool
	}{
		{"client_id", "client-1", false},
		{"spiffe_id", "spiffe://example.org/ns/a/sa/b", false},
		{"issuer", "login", false},
		{"credential", "bearer", false},
		{`claims.?client_type.orValue("") == "ai-agent"`, "true", false},
		{`claims.?missing.orValue("") == "ai-agent"`, "false", false},
		{"claims.n", "42", false},
		{"claims.f", "1.5", false},
		{"claims.n + 1", "43", false},
		{"uint(7)", "7", false},
		{"claims.roles", "a,b", false},
		{"scopes", "read,write", false},
		{"request.method + ' ' + request.host + request.path + '?' + request.query", "GET api.example.com/r?a=1", false},
		{"request.headers['x-request-id']", "rid", false},
		{"claims.?missing", "", true},
		{"claims.?client_type", "ai-agent", false},
		{"claims.missing", "", true},
		{"claims.empty", "", true},
		{"claims.crlf", "", true},
		{"claims.nul", "", true},
		{"null", "", true},
		{"claims.nested", "", true},
		{"'a,b'.split(',')[1].upperAscii()", "B", false},
	}
	for _, tc := range cases {
		t.Run(tc.expr, func(t *testing.T) {
			got, ok := compileTestExpr(t, tc.expr).Value(context.Background(), vars)
			if ok == tc.unset || got != tc.want {
				t.Fatalf("Value = %q, %v; want %q, set=%v", got, ok, tc.want, !tc.unset)
			}
		})
	}
}

func TestRequireErrorsAreFalse(t *testing.T) {
	env, _ := newEnv()
	e, _, msg := compileExpr(env, "claims.missing == 'x'", true)
	if msg != "" {
		t.Fatal(msg)
	}
	ok, err := e.True(context.Background(), &Vars{Claims: map[string]any{}})
	if ok || err == nil {
		t.Fatalf("True = %v, %v; want false with an error", ok, err)
	}
}

func TestRuntimeCostLimit(t *testing.T) {
	// Within the load-time estimate for bounded inputs, but a list far
	// larger than any real token could carry still stops at the deadline.
	env, _ := newEnv()
	e, _, msg := compileExpr(env, "claims.l.all(a, a >= 0)", true)
	if msg != "" {
		t.Fatal(msg)
	}
	big := make([]any, 300_000)
	for i := range big {
		big[i] = int64(i)
	}
	ok, err := e.True(context.Background(), &Vars{Claims: map[string]any{"l": big}})
	if ok || err == nil {
		t.Fatalf("True = %v, %v; want the cost limit to stop it", ok, err)
	}
}

// TestHeaderVariables: an expression that is one string variable is read
// without the program, and gives what the program gives, for every such
// variable and for values a header must not carry; anything more is run.
func TestHeaderVariables(t *testing.T) {
	for _, vars := range []*Vars{
		{ClientID: "c", SpiffeID: "spiffe://td/w", Issuer: "login", Credential: "bearer", DPoPJKT: "jkt"},
		{ClientID: "a\r\nx-evil: 1", SpiffeID: "a\x00b"},
		{},
	} {
		for _, src := range []string{"client_id", "spiffe_id", "issuer", "credential", "dpop_jkt", " (client_id) "} {
			e := compileTestExpr(t, src)
			if e.variable == "" {
				t.Fatalf("%q: not read directly", src)
			}
			got, gotOK := e.Value(context.Background(), vars)
			run := *e
			run.variable = ""
			want, wantOK := run.Value(context.Background(), vars)
			if got != want || gotOK != wantOK {
				t.Errorf("%q of %+v: read %q %v, the program gives %q %v", src, vars, got, gotOK, want, wantOK)
			}
		}
	}
	for _, src := range []string{"client_id + ''", "scopes", "claims.client_id", "request.host"} {
		if e := compileTestExpr(t, src); e.variable != "" {
			t.Errorf("%q: read as the variable %q", src, e.variable)
		}
	}
}

// TestRequestPairs: a request's headers as pairs read as the map of them
// would, a later pair replacing an earlier one, in lookups and in CEL.
func TestRequestPairs(t *testing.T) {
	pairs := &Request{Pairs: []HeaderPair{{"x-a", "1"}, {"x-b", "2"}, {"x-a", "3"}, {"", "e"}}}
	asMap := &Request{Headers: map[string]string{"x-a": "3", "x-b": "2", "": "e"}}
	for _, name := range []string{"x-a", "x-b", "", "x-c"} {
		gv, gok := pairs.Header(name)
		wv, wok := asMap.Header(name)
		if gv != wv || gok != wok {
			t.Errorf("Header(%q) = %q %v, the map gives %q %v", name, gv, gok, wv, wok)
		}
	}
	if got := pairs.HeaderMap(); !maps.Equal(got, asMap.Headers) {
		t.Errorf("HeaderMap = %v", got)
	}
	e := compileTestExpr(t, "request.headers['x-a'] + request.headers['x-b'] + string(size(request.headers))")
	if got, ok := e.Value(context.Background(), &Vars{Request: pairs}); got != "323" || !ok {
		t.Errorf("CEL read %q %v, want 323", got, ok)
	}
	if _, ok := (&Request{}).Header("x-a"); ok {
		t.Error("a request without headers has x-a")
	}
}
