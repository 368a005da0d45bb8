package bench

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/extauthz/extauthz/bench/mint"
)

// The DPoP scenario's request: GET DPoPHost APIPath, whose proofs name
// DPoPURI (the request's URI without its query).
const (
	DPoPHost = "dpop.bench.test"
	DPoPURI  = "https://" + DPoPHost + APIPath
)

// DPoPPolicy is the policy file holding the bench's DPoP rule: load it
// after bench/extauthz/policy.yaml, whose issuers it uses. Its max_age is
// an hour, so proofs signed before a run stay fresh through it.
//
//go:embed dpop-policy.yaml
var DPoPPolicy string

// DPoPClients is how many client keys the DPoP credentials are spread
// over, as many clients' would be: each key is a namespace of the replay
// store, and none comes near a per-client bound.
const DPoPClients = 16

// NewDPoPClients generates the DPoPClients ES256 client keys.
func NewDPoPClients() ([]*mint.Key, error) {
	out := make([]*mint.Key, DPoPClients)
	for i := range out {
		ks, err := mint.NewKeys(fmt.Sprintf("dpop-client-%d", i), "ES256")
		if err != nil {
			return nil, err
		}
		out[i] = ks.ByAlg["ES256"]
	}
	return out, nil
}

// DPoPCredential is an access token bound to a client key by cnf.jkt, and
// a DPoP proof by that key for one request: the token's ath, its own jti.
type DPoPCredential struct{ Token, Proof string }

// MintDPoP signs n credentials on every core, credential i for client
// i mod len(clients): the token by idp, with the bench's bearer claims (a
// sub and jti of its own) and cnf.jkt naming the client's key; the proof
// by that key, for GET DPoPURI, issued at now.
func MintDPoP(idp *mint.Key, clients []*mint.Key, n int, now time.Time) ([]DPoPCredential, error) {
	jkts := make([]string, len(clients))
	for i, k := range clients {
		jkts[i] = k.Thumbprint()
	}
	claims := bearerClaims(now.Truncate(time.Second))
	out := make([]DPoPCredential, n)
	err := mint.Parallel(n, func(i int) error {
		client := clients[i%len(clients)]
		c := claims(i)
		c["jti"] = fmt.Sprintf("dpop-%s", c["jti"])
		c["cnf"] = map[string]any{"jkt": jkts[i%len(clients)]}
		tok, err := idp.Sign("at+jwt", c)
		if err != nil {
			return err
		}
		ath := sha256.Sum256([]byte(tok))
		proof, err := client.SignProof(map[string]any{
			"jti": fmt.Sprintf("%016x-%08x", now.UnixNano(), i),
			"htm": "GET", "htu": DPoPURI, "iat": now.Unix(),
			"ath": base64.RawURLEncoding.EncodeToString(ath[:]),
		})
		out[i] = DPoPCredential{Token: tok, Proof: proof}
		return err
	})
	return out, err
}

// DPoPCheck is Envoy's Check of GET DPoPHost APIPath with the credential:
// `Authorization: DPoP <token>` and the `DPoP` header; seq varies the
// request id and trace headers.
func DPoPCheck(c DPoPCredential, seq int) *authv3.CheckRequest {
	return envoyRequest("GET", DPoPHost, APIPath+"?limit=10", map[string]string{
		"authorization": "DPoP " + c.Token,
		"dpop":          c.Proof,
	}, "", seq)
}

// DPoPRequest is DPoPCheck marshalled.
func DPoPRequest(c DPoPCredential, seq int) []byte { return marshal(DPoPCheck(c, seq)) }

// dpopRequests signs n credentials and marshals their Checks.
func dpopRequests(idp *mint.Key, clients []*mint.Key, n int) ([][]byte, error) {
	creds, err := MintDPoP(idp, clients, n, time.Now())
	if err != nil {
		return nil, err
	}
	reqs := make([][]byte, n)
	err = mint.Parallel(n, func(i int) error {
		reqs[i] = DPoPRequest(creds[i], i)
		return nil
	})
	return reqs, err
}

// dpopRound is the DPoP scenario against its allowance in one round: the
// floor's server CPU per Check plus two raw ES256 verifies, the least any
// verifier of a DPoP-bound token and its proof must spend.
type dpopRound struct{ cpu, floor, raw, allowance float64 }

// dpopRounds pairs each DPoP round with the floor and the raw ES256 verify
// of the same round.
func (r *report) dpopRounds() []dpopRound {
	runs, floors, raws := r.runs(scDPoP, srvExt), r.runs(scFloor, srvFloor), r.rawVerify["ES256"]
	out := make([]dpopRound, min(len(runs), len(floors), len(raws)))
	for i := range out {
		out[i] = dpopRound{cpu: cpu(runs[i]), floor: cpu(floors[i]), raw: raws[i]}
		out[i].allowance = out[i].floor + 2*out[i].raw
	}
	return out
}

func (r *report) writeDPoP(w func(string, ...any)) {
	rounds := r.dpopRounds()
	if len(rounds) == 0 {
		return
	}
	of := func(f func(dpopRound) float64) float64 {
		v := make([]float64, len(rounds))
		for i, x := range rounds {
			v[i] = f(x)
		}
		return median(v)
	}
	cpuUS, floorUS, rawUS, allowance := of(func(x dpopRound) float64 { return x.cpu }), of(func(x dpopRound) float64 { return x.floor }),
		of(func(x dpopRound) float64 { return x.raw }), of(func(x dpopRound) float64 { return x.allowance })
	ratio, over := of(func(x dpopRound) float64 { return x.cpu / x.allowance }), of(func(x dpopRound) float64 { return x.cpu - x.allowance })
	w("### DPoP against the floor plus its two raw verifies\n\n")
	w("Each Check of the DPoP scenario carries a distinct ES256 access token bound by `cnf.jkt` to a client's key (one of %d) and a DPoP proof by that key, so extauthz verifies two ES256 signatures (the token's and the proof's) and claims the proof's `jti` in the memory replay store; each token is sent once, so the token cache never hits. ", DPoPClients)
	w("The tokens and proofs are signed before the servers start; the bench's DPoP rule sets `max_age: 1h` so that a proof signed minutes before its round is still fresh (a deployment keeps the default 60 s; max_age decides which proofs are accepted, and how long the replay store keeps each `jti`). ")
	w("Its allowance is the floor's server CPU per Check plus two raw ES256 verifies, each from the same round; the table shows the medians over the %d rounds of each quantity and of the per-round ratio.\n\n", len(rounds))
	w("| | µs per Check |\n| --- | ---: |\n")
	w("| server CPU, DPoP | %.1f |\n", cpuUS)
	w("| floor + 2 × raw ES256 verify | %.1f + 2 × %.1f = %.1f |\n", floorUS, rawUS, allowance)
	w("| over the allowance | %+.1f |\n", over)
	w("| ratio to the allowance | %.2f× |\n\n", ratio)
	if dp, ok := r.bench("BenchmarkCheckDPoP"); ok {
		nb, ok1 := r.bench("BenchmarkCheck/new_bearer_ES256")
		rv, ok2 := r.bench("BenchmarkRawVerify/ES256")
		if ok1 && ok2 {
			w("In process, a DPoP Check takes %.1f µs (%.0f allocations) against %.1f µs (%.0f allocations) for a new ES256 bearer token and %.1f µs for one raw ES256 verify: the proof adds %.1f µs, of which a verify is %.1f.\n\n",
				dp.Metrics["ns/op"]/1e3, dp.Metrics["allocs/op"], nb.Metrics["ns/op"]/1e3, nb.Metrics["allocs/op"], rv.Metrics["ns/op"]/1e3,
				(dp.Metrics["ns/op"]-nb.Metrics["ns/op"])/1e3, rv.Metrics["ns/op"]/1e3)
		}
	}
}
