package introspect

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/extauthz/extauthz/internal/logtest"
)

// TestOutageLoggedOnce: an endpoint failing for many lookups is logged when
// the outage starts and when it ends, not per lookup; the metrics count
// each request by outcome and each cache lookup; no log line holds a
// token.
func TestOutageLoggedOnce(t *testing.T) {
	var logs logtest.Buffer
	reg := prometheus.NewRegistry()
	p, err := NewPlane(Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ep := newEndpoint(t, func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	c, err := p.Client(testSpec(t, ep.srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"opaque-a", "opaque-b", "opaque-c"} {
		if _, err := lookup(t, c, tok, now); !isUnavailable(err) {
			t.Fatalf("%s: %v", tok, err)
		}
	}
	ep.set(activeAnswer(t, nil))
	for range 2 {
		if _, err := lookup(t, c, "opaque-a", now); err != nil {
			t.Fatal(err)
		}
	}
	out := logs.String()
	if n := strings.Count(out, "introspect: endpoint failing"); n != 1 {
		t.Errorf("outage logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "introspect: endpoint answering again"); n != 1 {
		t.Errorf("recovery logged %d times, want once:\n%s", n, out)
	}
	if strings.Contains(out, "opaque-") {
		t.Errorf("a log line holds a token:\n%s", out)
	}
	for _, m := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"as", outcomeStatus}, 3},
		{[]string{"as", outcomeActive}, 1},
	} {
		if got := testutil.ToFloat64(p.m.requests.WithLabelValues(m.labels...)); got != m.want {
			t.Errorf("requests%v = %v, want %v", m.labels, got, m.want)
		}
	}
	if hit, miss := testutil.ToFloat64(p.m.cache.WithLabelValues("as", "hit")), testutil.ToFloat64(p.m.cache.WithLabelValues("as", "miss")); hit != 1 || miss != 4 {
		t.Errorf("cache hits, misses = %v, %v; want 1, 4", hit, miss)
	}
}

// TestClientReuse: a reload with the same settings and files keeps the
// client (and its cache); a changed secret makes a new one.
func TestClientReuse(t *testing.T) {
	ep := newEndpoint(t, activeAnswer(t, nil))
	p, err := NewPlane(Config{})
	if err != nil {
		t.Fatal(err)
	}
	spec := testSpec(t, ep.srv.URL)
	a, err := p.Client(spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Client(spec)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("the same spec made a new client")
	}
	spec.ClientSecretFile = writeFile(t, "secret", "rotated")
	if c, err := p.Client(spec); err != nil || c == a {
		t.Fatalf("a rotated secret kept the old client (%v)", err)
	}
}

// TestClientSpecErrors: settings that cannot work are refused when the
// policy loads.
func TestClientSpecErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		mod  func(*Spec)
		want string
	}{
		"http endpoint":       {func(s *Spec) { s.Endpoint = "http://as.example.com/introspect" }, "http://"},
		"no method":           {func(s *Spec) { s.Method = "" }, "method is required"},
		"unknown method":      {func(s *Spec) { s.Method = "client_secret_post" }, "not one of"},
		"missing secret file": {func(s *Spec) { s.ClientSecretFile = "/nonexistent/secret" }, "client_secret_file"},
		"empty secret":        {func(s *Spec) { s.ClientSecretFile = writeFile(t, "empty", "\n") }, "empty"},
		"key that is no key": {func(s *Spec) {
			s.Method, s.ClientSecretFile, s.PrivateKeyFile = PrivateKeyJWT, "", writeFile(t, "k", "junk")
		}, "no PEM"},
		"tls without a key file": {func(s *Spec) { s.Method, s.ClientSecretFile, s.CertFile = TLSClientAuth, "", writeFile(t, "c", "x") }, "cert_file and client.key_file"},
		"jwt without keys":       {func(s *Spec) { s.JWTResponse = true }, "key source"},
		"no client id":           {func(s *Spec) { s.ClientID = "" }, "client_id"},
	} {
		t.Run(name, func(t *testing.T) {
			p, _ := NewPlane(Config{})
			_, err := p.Client(testSpec(t, "https://as.example.com/introspect", tc.mod))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Client error = %v, want one saying %q", err, tc.want)
			}
		})
	}
}
