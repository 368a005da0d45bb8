package check_test

import (
	"testing"
)

// TestRequestHeadersInCEL: an expression reading request.headers sees every
// header of the request, through the gRPC server as extauthz serve runs it
// (whose handler keeps headers as a list and makes their map only for such
// an expression), in both of Envoy's header encodings, a repeated header
// joined with "," (Envoy's join in `headers`, readRequest's in header_map).
func TestRequestHeadersInCEL(t *testing.T) {
	h := newHarness(t, `version: v1
issuers:
  - name: login
    issuer: https://login.example.com
    jwks_uri: {{JWKS}}/login
rules:
  - name: reports-api
    match:
      path_prefixes: [/reports/]
    bearer:
      issuers: [login]
      audiences: [api.example.com]
      scopes: [reports]
    require:
      - 'request.headers[?"x-team"].orValue("") != "banned"'
    headers:
      x-team: 'request.headers[?"x-team"].orValue("none")'
      x-header-count: 'size(request.headers)'
default_action: deny
`)
	tok := signLogin(t, loginClaims())
	counts := map[string]string{}
	for _, headerMap := range []bool{false, true} {
		for _, c := range []struct {
			name  string
			extra []string
			team  string
			deny  bool
		}{
			{"no x-team", nil, "none", false},
			{"x-team", []string{"x-team", "red"}, "red", false},
			{"x-team twice", []string{"x-team", "red", "x-team", "blue"}, "red,blue", false},
			{"banned", []string{"x-team", "banned"}, "", true},
		} {
			r := reportsReq("GET", append([]string{"authorization", "Bearer " + tok}, c.extra...)...)
			r.headerMap = headerMap
			if len(c.extra) == 4 && !headerMap {
				r = reportsReq("GET", "authorization", "Bearer "+tok, "x-team", "red,blue")
			}
			resp := h.check(t, r)
			if c.deny {
				if resp.GetDeniedResponse() == nil {
					t.Errorf("%s (header_map %v): allowed, want the require to deny", c.name, headerMap)
				}
				continue
			}
			set := map[string]string{}
			for _, hv := range resp.GetOkResponse().GetHeaders() {
				set[hv.GetHeader().GetKey()] = hv.GetHeader().GetValue()
			}
			if set["x-team"] != c.team {
				t.Errorf("%s (header_map %v): x-team %q, want %q", c.name, headerMap, set["x-team"], c.team)
			}
			// Both encodings give the map the same names.
			n := set["x-header-count"]
			if n == "" || n == "0" || (counts[c.name] != "" && counts[c.name] != n) {
				t.Errorf("%s (header_map %v): x-header-count %q, other encoding %q", c.name, headerMap, n, counts[c.name])
			}
			counts[c.name] = n
		}
	}
}
