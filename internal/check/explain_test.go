package check

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/replay"
)

// explainServer serves one bearer rule with the given requires, its
// issuer's keys being priv's.
func explainServer(t *testing.T, priv *ecdsa.PrivateKey, now time.Time, requires ...string) *Server {
	t.Helper()
	p := "version: v1\nissuers:\n  - {name: login, issuer: https://login.example.com, jwks_uri: https://login.example.com/jwks}\n" +
		"rules:\n  - name: api\n    bearer: {issuers: [login], audiences: [api]}\n    require:\n"
	for _, r := range requires {
		p += "      - '" + r + "'\n"
	}
	file := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(file, []byte(p), 0o600); err != nil {
		t.Fatal(err)
	}
	plane, err := keys.NewPlane(keys.Config{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plane.Close() })
	snap, err := policy.Load([]string{file}, policy.Options{Keys: plane})
	if err != nil {
		t.Fatal(err)
	}
	snap.Issuers["login"].Keys = &swappableKeys{set: keys.NewSet([]*keys.Key{{ID: "k1", Public: &priv.PublicKey}})}
	return New(Config{Policy: policy.NewStore(snap), Replay: replay.NewMemory(replay.MemoryConfig{}), Now: func() time.Time { return now }})
}

// TestExplainRequireValues: a failed require's step lists the values the
// expression read, each path once, comprehension variables left out and
// secret headers redacted; a require that holds lists none.
func TestExplainRequireValues(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_900_000_000, 0)
	tok := es256(t, priv, map[string]any{
		"iss": "https://login.example.com", "aud": "api", "client_id": "c1", "tenant": "acme",
		"scope": "read write", "exp": now.Unix() + 60,
	})
	req := func(path string) *authv3.CheckRequest {
		return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
			Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Host: "beta.example.com", Path: path, Headers: map[string]string{
				"authorization": "Bearer " + tok, "x-team": "blue",
			}},
		}}}
	}
	tests := []struct {
		name    string
		require string
		want    []Var
	}{
		{
			name:    "claims and request",
			require: `claims.?tenant.orValue("") == request.host.split(".")[0] && claims.tenant != ""`,
			want:    []Var{{"claims.tenant", `"acme"`}, {"request.host", `"beta.example.com"`}},
		},
		{
			name:    "absent claim, header by index, scopes in a comprehension",
			require: `has(claims.org) || request.headers["x-team"] == "red" || scopes.exists(s, s == "admin")`,
			want:    []Var{{"claims.org", "(absent)"}, {`request.headers["x-team"]`, `"blue"`}, {"scopes", `["read","write"]`}},
		},
		{
			name:    "a whole header map, secrets redacted",
			require: `size(request.headers) > 5 && client_id == "c2"`,
			want:    []Var{{"request.headers", `{"authorization":"(redacted)","x-team":"blue"}`}, {"client_id", `"c1"`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := explainServer(t, priv, now, `issuer == "login"`, tt.require)
			resp, steps := srv.Explain(context.Background(), req("/"))
			if r := resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue(); r != ReasonRequire {
				t.Fatalf("reason %q, want %s; steps %+v", r, ReasonRequire, steps)
			}
			var requires []Step
			for _, s := range steps {
				if s.Check == "require" {
					requires = append(requires, s)
				}
			}
			if len(requires) != 2 || !requires[0].OK || requires[0].Vars != nil || requires[1].OK {
				t.Fatalf("require steps %+v; want one that holds without values and one that fails", requires)
			}
			if !reflect.DeepEqual(requires[1].Vars, tt.want) {
				t.Errorf("values\n got %q\nwant %q", requires[1].Vars, tt.want)
			}
		})
	}
}
