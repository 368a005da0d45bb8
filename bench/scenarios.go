package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/extauthz/extauthz/bench/mint"
)

// Scenario keys, as -scenarios takes them.
const (
	keyFloor       = "floor"
	keyCached      = "cached"
	keyAssertMem   = "assertion-memory"
	keyAssertRedis = "assertion-redis"
	keyDPoP        = "dpop"
	keyFixed       = "fixed"
	keyTxToken     = "internal-token"
	keyIntrospect  = "introspection"
)

func keyDistinct(alg string) string { return "distinct-" + alg }

// ScenarioKeys are the scenarios a run may be limited to (-scenarios).
func ScenarioKeys() []string {
	keys := []string{keyFloor, keyCached}
	for _, alg := range mint.Algs {
		keys = append(keys, keyDistinct(alg))
	}
	return append(keys, keyDPoP, keyIntrospect, keyAssertMem, keyAssertRedis, keyFixed, keyTxToken)
}

// scenarioKey is the key of a scenario as the report names it.
func scenarioKey(scenario string) string {
	switch scenario {
	case scFloor, scBare:
		return keyFloor
	case scCached:
		return keyCached
	case scAssertMem:
		return keyAssertMem
	case scAssertRedis:
		return keyAssertRedis
	case scDPoP:
		return keyDPoP
	case scFixed:
		return keyFixed
	case scTxToken:
		return keyTxToken
	case scIntrospect:
		return keyIntrospect
	}
	if alg, ok := strings.CutPrefix(scenario, scDistinct("")); ok {
		return keyDistinct(alg)
	}
	return scenario
}

func (c Config) checkScenarios() error {
	known := ScenarioKeys()
	for _, k := range c.Scenarios {
		if !slices.Contains(known, k) {
			return fmt.Errorf("bench: unknown scenario %q (known: %s)", k, strings.Join(known, ", "))
		}
	}
	return nil
}

// Partial reports whether the run leaves scenarios out.
func (c Config) Partial() bool {
	for _, k := range ScenarioKeys() {
		if !c.wants(k) {
			return true
		}
	}
	return false
}

// wants reports whether the run measures the scenario of key; the floor,
// which every ratio needs, always.
func (c Config) wants(key string) bool {
	return len(c.Scenarios) == 0 || key == keyFloor || slices.Contains(c.Scenarios, key)
}

// wantsPeers reports whether a scenario the peers run in is measured.
func (c Config) wantsPeers() bool {
	if c.wants(keyCached) {
		return true
	}
	for _, alg := range mint.Algs {
		if c.wants(keyDistinct(alg)) {
			return true
		}
	}
	return false
}

// sanityDPoP checks that extauthz allows a DPoP request of the pool (which
// loses it), refuses it replayed, and refuses a proof with a forged
// signature.
func sanityDPoP(ctx context.Context, tg *Target, src *OneShot, idp *mint.Key, clients []*mint.Key) error {
	req, _ := src.Next()
	if code, err := tg.Check(ctx, 0, req); err != nil || code != 0 {
		return fmt.Errorf("bench: %s does not allow a DPoP-bound token with its proof (code %d, err %v); log: %s", tg.Name, code, err, tg.Proc.log)
	}
	if code, err := tg.Check(ctx, 0, req); err != nil || code == 0 {
		return fmt.Errorf("bench: %s allows a replayed DPoP proof (code %d, err %v)", tg.Name, code, err)
	}
	creds, err := MintDPoP(idp, clients, 1, time.Now())
	if err != nil {
		return err
	}
	forged := DPoPCredential{Token: creds[0].Token, Proof: tamper(creds[0].Proof)}
	if code, err := tg.Check(ctx, 0, DPoPRequest(forged, 0)); err != nil || code == 0 {
		return fmt.Errorf("bench: %s allows a DPoP proof with a forged signature (code %d, err %v)", tg.Name, code, err)
	}
	if code, err := tg.Check(ctx, 0, DPoPRequest(creds[0], 0)); err != nil || code != 0 {
		return fmt.Errorf("bench: %s does not allow a fresh DPoP credential (code %d, err %v)", tg.Name, code, err)
	}
	return nil
}
