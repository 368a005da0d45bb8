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

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// TxHost is the host of the internal-token scenario's rule, which signs a
// token per Check; TxReusedHost that of the rule whose token is reused.
const (
	TxHost       = "minted.bench.test"
	TxReusedHost = "reused.bench.test"
)

// TxPolicy is the policy file of the internal-token scenario: load it after
// bench/extauthz/policy.yaml, whose issuer it uses.
//
//go:embed txtoken-policy.yaml
var TxPolicy string

// TxCheck is Envoy's Check of GET host APIPath with the bearer token.
func TxCheck(host, token string, seq int) *authv3.CheckRequest {
	return envoyRequest("GET", host, APIPath+"?limit=10", map[string]string{
		"authorization": "Bearer " + token,
	}, "", seq)
}

// TxRequest is TxCheck of TxHost, marshalled.
func TxRequest(token string, seq int) []byte { return marshal(TxCheck(TxHost, token, seq)) }

// TxKeyPEM is a fresh P-256 signing key in PKCS #8 PEM.
func TxKeyPEM() ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// txTokenFlags writes the scenario's policy file and a fresh P-256 signing
// key into dir and returns the serve flags that load them.
func txTokenFlags(dir string) ([]string, error) {
	policy, err := writeFile(dir, "policy-txtoken.yaml", TxPolicy)
	if err != nil {
		return nil, err
	}
	key, err := TxKeyPEM()
	if err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dir, "token-signing.pem")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		return nil, err
	}
	return []string{"--policy", policy, "--token-keys", keyFile, "--token-issuer", "https://extauthz.bench.test"}, nil
}
