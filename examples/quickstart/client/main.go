// Command client plays a B2B partner at the quick-start token endpoint: it
// signs a fresh RFC 7523 client assertion with the example's private key,
// sends extauthz the CheckRequest that Envoy would send for the token
// request, and prints the decision and the headers the upstream would get.
//
//	make run                              # in one terminal
//	go run ./examples/quickstart/client   # in another
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const tokenEndpoint = "https://login.example.com/oauth/v2/oauth-token"

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "extauthz gRPC address")
	keyFile := flag.String("key", defaultKeyFile(), "the partner's private JWK")
	agent := flag.Bool("agent", false, "claim client_type ai-agent")
	flag.Parse()
	if err := run(*addr, *keyFile, *agent); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

func defaultKeyFile() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "keys", "client.private.jwk.json")
}

func run(addr, keyFile string, agent bool) error {
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	key, err := jwk.ParseKey(raw)
	if err != nil {
		return err
	}
	assertion, err := sign(key, agent)
	if err != nil {
		return err
	}
	body := url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}.Encode()
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "POST",
			Host:   "login.example.com",
			Path:   "/oauth/v2/oauth-token",
			Scheme: "https",
			Headers: map[string]string{
				":authority":   "login.example.com",
				":method":      "POST",
				":path":        "/oauth/v2/oauth-token",
				"content-type": "application/x-www-form-urlencoded",
				// A client trying to forge the header the upstream trusts:
				"x-client-id": "somebody-else",
			},
			Body: body,
		}},
	}}
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, req)
	if err != nil {
		return err
	}
	if ok := resp.GetOkResponse(); ok != nil {
		fmt.Println("decision: allow")
		for _, h := range ok.GetHeaders() {
			fmt.Printf("  set    %s: %s\n", h.GetHeader().GetKey(), h.GetHeader().GetValue())
		}
		for _, h := range ok.GetHeadersToRemove() {
			fmt.Printf("  remove %s\n", h)
		}
	} else {
		d := resp.GetDeniedResponse()
		fmt.Printf("decision: deny (HTTP %d) %s\n", d.GetStatus().GetCode(), d.GetBody())
		printHeaders(d.GetHeaders())
	}
	fmt.Println("reason:", resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue())
	return nil
}

func printHeaders(hs []*corev3.HeaderValueOption) {
	for _, h := range hs {
		fmt.Printf("  %s: %s\n", h.GetHeader().GetKey(), h.GetHeader().GetValue())
	}
}

// sign makes a client assertion as RFC 7523 §3 describes it: iss and sub
// the client id, aud the token endpoint, a fresh jti, a two-minute life.
func sign(key jwk.Key, agent bool) (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	now := time.Now()
	b := jwt.NewBuilder().
		Issuer("quickstart-partner").
		Subject("quickstart-partner").
		Audience([]string{tokenEndpoint}).
		JwtID(hex.EncodeToString(jti)).
		IssuedAt(now).
		Expiration(now.Add(2 * time.Minute))
	if agent {
		b = b.Claim("client_type", "ai-agent")
	}
	tok, err := b.Build()
	if err != nil {
		return "", err
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.PS256(), key))
	if err != nil {
		return "", err
	}
	return string(signed), nil
}
