package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"os"
	"path/filepath"
)

// TxHost is the host of the internal-token scenario's rule.
const TxHost = "minted.bench.test"

// TxPolicy is the policy file of the internal-token scenario: load it after
// bench/extauthz/policy.yaml, whose issuer it uses.
//
//go:embed txtoken-policy.yaml
var TxPolicy string

// TxRequest is Envoy's Check of GET TxHost APIPath with the bearer token.
func TxRequest(token string, seq int) []byte {
	return marshal(envoyRequest("GET", TxHost, APIPath+"?limit=10", map[string]string{
		"authorization": "Bearer " + token,
	}, "", seq))
}

// txTokenFlags writes the scenario's policy file and a fresh P-256 signing
// key into dir and returns the serve flags that load them.
func txTokenFlags(dir string) ([]string, error) {
	policy, err := writeFile(dir, "policy-txtoken.yaml", TxPolicy)
	if err != nil {
		return nil, err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dir, "token-signing.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	return []string{"--policy", policy, "--token-keys", keyFile, "--token-issuer", "https://extauthz.bench.test"}, nil
}
