package adversarial_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/replay"
)

// isoPolicy has two self-signed clients at the token endpoint, each its
// own replay namespace, and an API that takes only DPoP-bound tokens, whose
// proofs are claimed in the namespace of their key.
const isoPolicy = `version: v1
issuers:
  - name: ec
    issuer: ec-client
    jwks_uri: {{JWKS}}/ec
  - name: rsa
    issuer: rsa-client
    jwks_uri: {{JWKS}}/rsa
  - name: login
    issuer: https://login.example.com
    jwks_uri: {{JWKS}}/login
rules:
  - name: token-endpoint
    match:
      hosts: [login.example.com]
      paths: [/oauth/token]
      methods: [POST]
    client_assertion:
      issuers: [ec, rsa]
      audiences: [https://login.example.com/oauth/token]
    headers:
      x-client-id: client_id
  - name: api
    match:
      path_prefixes: [/api/]
    bearer:
      issuers: [login]
      audiences: [api.example.com]
      dpop: {mode: required}
    headers:
      x-client-id: client_id
default_action: deny
`

// The replay store under attack: small, so that a flood reaches its
// bounds in a few dozen requests.
const (
	isoMaxEntries = 40
	isoPerClient  = 8
	isoDPoPGroup  = 20
)

// isoHarness is a harness over isoPolicy with a small replay store and
// its metrics.
type isoHarness struct {
	*harness
	store   *replay.Memory
	metrics *prometheus.Registry
}

func newIsoHarness(t *testing.T) *isoHarness {
	t.Helper()
	h := &isoHarness{metrics: prometheus.NewRegistry()}
	h.harness = newHarnessWith(t, harnessConfig{policy: isoPolicy, checkOpts: []func(*check.Config){func(c *check.Config) {
		h.store = replay.NewMemory(replay.MemoryConfig{
			MaxEntries:             isoMaxEntries,
			MaxEntriesPerNamespace: isoPerClient,
			MaxEntriesPerGroup:     isoDPoPGroup,
			Clock:                  c.Now,
		})
		c.Replay = h.store
		c.Metrics = check.NewMetrics(h.metrics)
	}}})
	return h
}

// allowed reports whether r was allowed; any deny but want fails t.
func (h *isoHarness) allowed(t *testing.T, r req, want deny) bool {
	t.Helper()
	resp := h.check(t, r)
	if metadata(resp)["decision"] == "allow" {
		return true
	}
	assertDeny(t, resp, want)
	return false
}

// flood sends next() until one is refused as storeFull, and returns how
// many were allowed before it; any other deny, or more allows than the
// store holds, fails t.
func (h *isoHarness) flood(t *testing.T, next func() req) int {
	t.Helper()
	n := 0
	for h.allowed(t, next(), storeFull) {
		if n++; n > isoMaxEntries {
			t.Fatalf("%d fresh credentials allowed, more than the store holds (%d)", n, isoMaxEntries)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return n
}

func (h *isoHarness) mustAllow(t *testing.T, what string, r req) {
	t.Helper()
	if m := metadata(h.check(t, r)); m["decision"] != "allow" {
		t.Fatalf("%s: denied, want allowed: %v", what, m)
	}
}

// assertion is a fresh RFC 7523 assertion of the self-signed client iss
// (ec-client or rsa-client): a new jti, two minutes to live.
func (h *isoHarness) assertion(iss string) string {
	if iss == "rsa-client" {
		return signRSA(h.rsaClaims())
	}
	return signEC(h.ecClaims())
}

// isoDPoPClient is a DPoP key and an access token bound to it.
type isoDPoPClient struct {
	key   dpopKey
	token string
}

// dpopClient mints a key and an access token of login bound to it, as the
// authorization server would for each key a client presents.
func (h *isoHarness) dpopClient(t *testing.T, clientID string) isoDPoPClient {
	t.Helper()
	key := newDPoPKey(t)
	now := h.clock.Now()
	tok := signLogin(claims{
		"iss": loginIss, "sub": clientID, "aud": "api.example.com", "client_id": clientID,
		"iat": unixAt(now, 0), "exp": unixAt(now, time.Hour), "cnf": jkt(key.jkt),
	})
	return isoDPoPClient{key: key, token: tok}
}

// call is a GET of the API with c's token and a fresh proof (a new jti).
func (h *isoHarness) call(t *testing.T, c isoDPoPClient) req {
	t.Helper()
	proof := c.key.proof(t, h.proofClaims("GET", htuOf(apiPath), c.token))
	return req{method: "GET", host: rsHost, path: apiPath,
		headers: [][2]string{{"authorization", "DPoP " + c.token}, {"dpop", proof}}}
}

// storeFull is the deny of a claim refused for want of room: 503 with
// Retry-After, whichever bound refused it.
var storeFull = deny{codes.PermissionDenied, 503, check.ReasonReplayFull}

// fullSeries is extauthz_replay_full_total by "namespace/bound".
func (h *isoHarness) fullSeries(t *testing.T) map[string]float64 {
	t.Helper()
	mfs, err := h.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "extauthz_replay_full_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			out[l["namespace"]+"/"+l["bound"]] = m.GetCounter().GetValue()
		}
	}
	return out
}

func (h *isoHarness) wantFullSeries(t *testing.T, want map[string]float64) {
	t.Helper()
	got := h.fullSeries(t)
	if len(got) != len(want) {
		t.Errorf("extauthz_replay_full_total = %v, want %v", got, want)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("extauthz_replay_full_total = %v, want %v", got, want)
			return
		}
	}
}

// TestReplayIsolationAssertionFlood: client A (ec) floods the token
// endpoint with assertions, each with a fresh jti, until it is refused.
// It is refused at its own share, with a 503 that tells it to back off,
// while client B (rsa) keeps being allowed; A's tokens stay single-use; and
// once A's assertions expire, A is allowed again. The refusals are counted
// under A's issuer.
func TestReplayIsolationAssertionFlood(t *testing.T) {
	h := newIsoHarness(t)
	first := h.assertion("ec-client")
	h.mustAllow(t, "A's first assertion", assertionReq(first))
	accepted := 1 + h.flood(t, func() req { return assertionReq(h.assertion("ec-client")) })
	if accepted != isoPerClient {
		t.Fatalf("A was allowed %d assertions before the refusal, want its share of %d", accepted, isoPerClient)
	}

	for i := range isoPerClient {
		h.mustAllow(t, fmt.Sprintf("B's assertion %d", i+1), assertionReq(h.assertion("rsa-client")))
	}
	assertDeny(t, h.check(t, assertionReq(h.assertion("ec-client"))), storeFull)
	// The flood evicted nothing: A's first assertion is still a replay.
	assertDeny(t, h.check(t, assertionReq(first)), invalidClient(check.ReasonReplayed))
	if n := h.store.Len(); n != 2*isoPerClient {
		t.Errorf("the store holds %d entries, want %d: A's and B's shares", n, 2*isoPerClient)
	}
	h.wantFullSeries(t, map[string]float64{"iss:ec-client/namespace": 2})

	// Past exp and the clock skew, A's entries give its room back.
	h.clock.Advance(2*time.Minute + 30*time.Second + time.Second)
	h.mustAllow(t, "A after its assertions expired", assertionReq(h.assertion("ec-client")))
}

// TestReplayIsolationDPoPKeyFlood: one DPoP client floods the API with
// fresh proofs of its key until refused; another client, with its own key,
// is still allowed, and so is a client assertion.
func TestReplayIsolationDPoPKeyFlood(t *testing.T) {
	h := newIsoHarness(t)
	flooder, other := h.dpopClient(t, "flooder"), h.dpopClient(t, "other")
	accepted := h.flood(t, func() req { return h.call(t, flooder) })
	if accepted != isoPerClient {
		t.Fatalf("the flooder was allowed %d proofs before the refusal, want its share of %d", accepted, isoPerClient)
	}
	h.mustAllow(t, "another DPoP client", h.call(t, other))
	h.mustAllow(t, "a client assertion", assertionReq(h.assertion("ec-client")))
	assertDeny(t, h.check(t, h.call(t, flooder)), storeFull)
	// Every DPoP key shares one label: thumbprints are the client's to mint.
	h.wantFullSeries(t, map[string]float64{"dpop#/namespace": 2})

	// Proofs are claimed until iat plus 60s plus 5s of skew.
	h.clock.Advance(66 * time.Second)
	h.mustAllow(t, "the flooder once its proofs expired", h.call(t, flooder))
}

// TestReplayIsolationDPoPKeyRotation: a client that gets a new key (and
// token) for every request is not stopped by the per-key share; the DPoP
// group's bound stops it, and the issuers' client assertions keep their
// room. Within DPoP there is no finer isolation to be had from the
// namespace, since keys cost nothing: a new key is refused until the
// group's entries expire.
func TestReplayIsolationDPoPKeyRotation(t *testing.T) {
	h := newIsoHarness(t)
	accepted := h.flood(t, func() req { return h.call(t, h.dpopClient(t, "rotator")) })
	if accepted != isoDPoPGroup {
		t.Fatalf("the rotating client was allowed %d proofs before the refusal, want the group's bound of %d", accepted, isoDPoPGroup)
	}
	for i := range isoPerClient {
		h.mustAllow(t, fmt.Sprintf("A's assertion %d", i+1), assertionReq(h.assertion("ec-client")))
		h.mustAllow(t, fmt.Sprintf("B's assertion %d", i+1), assertionReq(h.assertion("rsa-client")))
	}
	assertDeny(t, h.check(t, h.call(t, h.dpopClient(t, "newcomer"))), storeFull)
	if n := h.store.Len(); n > isoMaxEntries {
		t.Errorf("the store holds %d entries, over its total of %d", n, isoMaxEntries)
	}
	h.wantFullSeries(t, map[string]float64{"dpop#/group": 2})

	h.clock.Advance(66 * time.Second)
	h.mustAllow(t, "a new DPoP client once the proofs expired", h.call(t, h.dpopClient(t, "newcomer")))
}
