package introspect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/token"
)

const (
	jwtResponseType = "application/token-introspection+jwt"
	assertionType   = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// resolve returns the endpoint, discovering it on first use.
func (c *Client) resolve(ctx context.Context) (string, error) {
	if u := c.endpoint.get(); u != "" {
		return u, nil
	}
	u, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	c.endpoint.set(u)
	return u, nil
}

// discover reads the issuer's RFC 8414 metadata. Its issuer must equal ours
// byte for byte, or a metadata document could send the tokens of one
// issuer to another's endpoint.
func (c *Client) discover(ctx context.Context) (string, error) {
	u, _ := url.Parse(c.spec.Issuer)
	md := *u
	md.Path = "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.Path, "/")
	md.RawPath = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, md.String(), nil)
	if err != nil {
		return "", faultf(outcomeDiscovery, "discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "extauthz")
	body, _, err := c.do(req, "application/json")
	if err != nil {
		return "", err
	}
	doc, err := token.ParseObject(string(body))
	if err != nil {
		return "", faultf(outcomeDiscovery, "discovery %s: metadata is not a JSON object: %w", md.Redacted(), err)
	}
	if iss, _ := doc["issuer"].(string); iss != c.spec.Issuer {
		return "", faultf(outcomeDiscovery, "discovery %s: metadata issuer %q differs from the configured %q", md.Redacted(), iss, c.spec.Issuer)
	}
	ep, _ := doc["introspection_endpoint"].(string)
	if ep == "" {
		return "", faultf(outcomeDiscovery, "discovery %s: metadata has no introspection_endpoint", md.Redacted())
	}
	if _, err := keys.CheckURL(ep, c.spec.AllowInsecureHTTP); err != nil {
		return "", faultf(outcomeDiscovery, "discovery %s: introspection_endpoint: %w", md.Redacted(), err)
	}
	return ep, nil
}

// post makes the introspection request (RFC 7662 §2.1) and parses the
// answer.
func (c *Client) post(ctx context.Context, endpoint, raw string, now time.Time) (*token.Token, error) {
	form := url.Values{"token": {raw}}
	if c.spec.TokenTypeHint != "" {
		form.Set("token_type_hint", c.spec.TokenTypeHint)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		return nil, faultf(outcomeNetwork, "%w", err)
	}
	if err := c.auth.apply(req, form, endpoint, now); err != nil {
		return nil, faultf(outcomeNetwork, "client authentication: %w", err)
	}
	body := form.Encode()
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "extauthz")
	want := "application/json"
	if c.spec.JWTResponse {
		want = jwtResponseType
	}
	req.Header.Set("Accept", want)
	resp, shown, err := c.do(req, want)
	if err != nil {
		return nil, err
	}
	if c.spec.JWTResponse {
		return c.parseJWT(ctx, string(resp), now, shown)
	}
	tok, err := parseResponse(resp)
	if err != nil && !errors.Is(err, ErrInactive) {
		return nil, &fault{outcome: outcomeInvalid, err: fmt.Errorf("%s: %w", shown, err)}
	}
	return tok, err
}

// do sends req and returns the body of a 200 of media type want, at most
// MaxResponseBytes, and the URL as logs may show it.
func (c *Client) do(req *http.Request, want string) ([]byte, string, error) {
	shown := req.URL.Redacted()
	ctx := req.Context()
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, shown, &fault{outcome: classify(ctx, err), err: fmt.Errorf("%s: %w", shown, unwrapURL(err))}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, shown, faultf(outcomeStatus, "%s: status %d", shown, resp.StatusCode)
	}
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || !strings.EqualFold(mt, want) {
		return nil, shown, faultf(outcomeInvalid, "%s: content type %q, want %s", shown, resp.Header.Get("Content-Type"), want)
	}
	if resp.ContentLength > MaxResponseBytes {
		return nil, shown, faultf(outcomeTooLarge, "%s: body of %d bytes exceeds the %d-byte limit", shown, resp.ContentLength, MaxResponseBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, shown, &fault{outcome: classify(ctx, err), err: fmt.Errorf("%s: reading the body: %w", shown, err)}
	}
	if len(body) > MaxResponseBytes {
		return nil, shown, faultf(outcomeTooLarge, "%s: body exceeds the %d-byte limit", shown, MaxResponseBytes)
	}
	return body, shown, nil
}

func classify(ctx context.Context, err error) string {
	switch {
	case errors.Is(err, errRedirect):
		return outcomeRedirect
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return outcomeTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return outcomeTimeout
	}
	return outcomeNetwork
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
