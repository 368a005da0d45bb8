package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/extauthz/extauthz/test/jose"
)

// otlpReceiver is an OTLP/gRPC trace collector on a free loopback port that
// keeps every export request.
type otlpReceiver struct {
	collectortracepb.UnimplementedTraceServiceServer
	addr string

	mu   sync.Mutex
	reqs []*collectortracepb.ExportTraceServiceRequest
}

func startOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &otlpReceiver{addr: l.Addr().String()}
	gs := grpc.NewServer()
	collectortracepb.RegisterTraceServiceServer(gs, r)
	go gs.Serve(l)
	t.Cleanup(gs.Stop)
	return r
}

func (r *otlpReceiver) Export(_ context.Context, req *collectortracepb.ExportTraceServiceRequest) (*collectortracepb.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, proto.Clone(req).(*collectortracepb.ExportTraceServiceRequest))
	return &collectortracepb.ExportTraceServiceResponse{}, nil
}

// exported is a span with the resource it was exported under.
type exported struct {
	span     *tracepb.Span
	resource []*commonpb.KeyValue
	scope    string
}

// waitSpans polls until n spans have arrived, failing t after a deadline,
// and returns them with every export request.
func (r *otlpReceiver) waitSpans(t *testing.T, n int) ([]exported, []*collectortracepb.ExportTraceServiceRequest) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		reqs := slices.Clone(r.reqs)
		r.mu.Unlock()
		var spans []exported
		for _, req := range reqs {
			for _, rs := range req.GetResourceSpans() {
				for _, ss := range rs.GetScopeSpans() {
					for _, s := range ss.GetSpans() {
						spans = append(spans, exported{s, rs.GetResource().GetAttributes(), ss.GetScope().GetName()})
					}
				}
			}
		}
		if len(spans) >= n {
			return spans, reqs
		}
		if time.Now().After(deadline) {
			t.Fatalf("the OTLP receiver got %d spans, want %d", len(spans), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serveLog is serve's stderr: it keeps the JSON log and hands over the
// gRPC address of the "serving" line (slog writes one record per Write).
type serveLog struct {
	mu      sync.Mutex
	b       bytes.Buffer
	serving chan string
}

func (l *serveLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var line struct {
		Msg      string `json:"msg"`
		GRPCAddr string `json:"grpc_addr"`
	}
	if json.Unmarshal(p, &line) == nil && line.Msg == "serving" {
		select {
		case l.serving <- line.GRPCAddr:
		default:
		}
	}
	return l.b.Write(p)
}

func (l *serveLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// isolateEnv unsets every EXTAUTHZ_ and OTEL_ variable for the test, so
// only what the test sets configures serve and the OpenTelemetry SDK.
func isolateEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "EXTAUTHZ_") || strings.HasPrefix(k, "OTEL_") {
			t.Setenv(k, "") // restored when t ends
			os.Unsetenv(k)
		}
	}
}

const tracingPolicy = `version: v1
issuers:
  - name: login
    issuer: https://login.example.com
    jwks_file: login.jwks.json
    algorithms: [ES256]
  - name: partner
    issuer: partner-client
    jwks_file: partner.jwks.json
    algorithms: [ES256]
rules:
  - name: token-endpoint
    match:
      hosts: [login.example.com]
      paths: [/oauth/v2/oauth-token]
      methods: [POST]
    client_assertion:
      issuers: [partner]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
    headers:
      x-client-id: client_id
  - name: reports-api
    match:
      hosts: [api.example.com]
      path_prefixes: [/reports/]
    bearer:
      issuers: [login]
      audiences: [api.example.com]
    headers:
      x-client-id: client_id
default_action: deny
`

// checkSpanName is the span otelgrpc names after the gRPC method.
const checkSpanName = "envoy.service.auth.v3.Authorization/Check"

// jwsLike is any compact JWS or JWE: base64url segments of at least eight
// characters joined by dots, three or more.
var jwsLike = regexp.MustCompile(`[A-Za-z0-9_-]{8,}(\.[A-Za-z0-9_-]{8,}){2,}`)

// TestTracingExportsChecks serves Checks with OTLP tracing on, as an
// operator turns it on (OTEL_EXPORTER_OTLP_ENDPOINT), against an in-process
// OTLP receiver: a bearer Check continuing Envoy's trace, a client-assertion
// Check, and a denied bearer Check. Each is one server span with the gRPC
// attributes and nothing of the request; no token, nor any segment of one,
// reaches the exporter. The batcher's delay is an hour, so the spans arrive
// only through the flush of a graceful stop.
func TestTracingExportsChecks(t *testing.T) {
	isolateEnv(t)
	rcv := startOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+rcv.addr)
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "3600000") // ms

	login, partner := jose.P256(t), jose.P256(t)
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"login.jwks.json":   jose.JWKS(jose.PublicJWK("login-1", "ES256", login.Public())),
		"partner.jwks.json": jose.JWKS(jose.PublicJWK("partner-1", "ES256", partner.Public())),
		"policy.yaml":       []byte(tracingPolicy),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	logs := &serveLog{serving: make(chan string, 1)}
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"serve", "--policy", filepath.Join(dir, "policy.yaml"),
			"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-format", "json"}, &bytes.Buffer{}, logs)
	}()
	var grpcAddr string
	select {
	case grpcAddr = <-logs.serving:
	case code := <-exited:
		t.Fatalf("serve exited %d before serving:\n%s", code, logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("serve is not serving after 30s:\n%s", logs)
	}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)

	now := time.Now().Unix()
	bearer := jose.MustSign(t, "ES256", login, map[string]any{"kid": "login-1", "typ": "at+jwt"}, map[string]any{
		"iss": "https://login.example.com", "sub": "user-1", "aud": "api.example.com",
		"client_id": "reporting-app", "scope": "reports", "iat": now, "exp": now + 300,
	})
	assertion := jose.MustSign(t, "ES256", partner, map[string]any{"kid": "partner-1", "typ": "JWT"}, map[string]any{
		"iss": "partner-client", "sub": "partner-client", "aud": "https://login.example.com/oauth/v2/oauth-token",
		"jti": "3f1c0de2a7b94e55", "iat": now, "exp": now + 120,
	})
	// Signed by a key the issuer never had: denied as signature_invalid.
	forged := jose.MustSign(t, "ES256", jose.P256(t), map[string]any{"kid": "login-1", "typ": "at+jwt"}, map[string]any{
		"iss": "https://login.example.com", "sub": "user-2", "aud": "api.example.com",
		"client_id": "reporting-app", "iat": now, "exp": now + 300,
	})
	tokens := map[string]string{"bearer": bearer, "assertion": assertion, "forged": forged}

	// Envoy's W3C trace context for the bearer and forged Checks.
	const bearerTrace, forgedTrace, envoySpan = "4bf92f3577b34da6a3ce929d0e0e4736", "0af7651916cd43dd8448eb211c80319c", "00f067aa0ba902b7"
	check := func(name, traceID string, req *authv3.CheckRequest, wantCode codes.Code) {
		t.Helper()
		cctx := ctx
		if traceID != "" {
			cctx = metadata.AppendToOutgoingContext(ctx, "traceparent", "00-"+traceID+"-"+envoySpan+"-01")
		}
		cctx, cancel := context.WithTimeout(cctx, 10*time.Second)
		defer cancel()
		resp, err := client.Check(cctx, req)
		if err != nil {
			t.Fatalf("%s Check: %v", name, err)
		}
		if got := codes.Code(resp.GetStatus().GetCode()); got != wantCode {
			t.Fatalf("%s Check: status %v, want %v; log:\n%s", name, got, wantCode, logs)
		}
	}
	check("bearer", bearerTrace, apiCheck("Bearer "+bearer), codes.OK)
	check("client assertion", "", tokenEndpointCheck(assertion), codes.OK)
	check("forged bearer", forgedTrace, apiCheck("Bearer "+forged), codes.Unauthenticated)

	// Before the graceful stop, nothing has been exported.
	rcv.mu.Lock()
	early := len(rcv.reqs)
	rcv.mu.Unlock()
	if early != 0 {
		t.Errorf("%d export requests before shutdown, want none with an hour's batch delay", early)
	}
	stop()
	select {
	case code := <-exited:
		if code != 0 {
			t.Fatalf("serve exited %d, want 0; log:\n%s", code, logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop within 30s of its context ending:\n%s", logs)
	}
	spans, reqs := rcv.waitSpans(t, 3)
	if len(spans) != 3 {
		t.Fatalf("got %d spans, want 3 (one per Check)", len(spans))
	}

	_, grpcPort, _ := net.SplitHostPort(grpcAddr)
	byTrace := map[string]exported{}
	for _, s := range spans {
		sp := s.span
		if sp.GetName() != checkSpanName {
			t.Errorf("span name %q, want %q", sp.GetName(), checkSpanName)
		}
		if sp.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
			t.Errorf("span kind %v, want SERVER", sp.GetKind())
		}
		// A deny is a normal response: no span is an error.
		if c := sp.GetStatus().GetCode(); c != tracepb.Status_STATUS_CODE_UNSET {
			t.Errorf("span status %v (%q), want unset", c, sp.GetStatus().GetMessage())
		}
		if s.scope != "go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc" {
			t.Errorf("instrumentation scope %q, want otelgrpc", s.scope)
		}
		want := map[string]string{
			"rpc.system.name":          "grpc",
			"rpc.method":               checkSpanName,
			"rpc.response.status_code": "OK",
			"server.address":           "127.0.0.1",
			"server.port":              grpcPort,
		}
		if got := attrMap(sp.GetAttributes()); !maps.Equal(got, want) {
			t.Errorf("span attributes %v, want exactly %v", got, want)
		}
		res := attrMap(s.resource)
		if res["service.name"] != "extauthz" || res["service.version"] != version() {
			t.Errorf("resource %v, want service.name extauthz and service.version %s", res, version())
		}
		byTrace[hex.EncodeToString(sp.GetTraceId())] = s
	}
	// Envoy's trace is continued: the span is a child of Envoy's span.
	for _, tr := range []string{bearerTrace, forgedTrace} {
		s, ok := byTrace[tr]
		if !ok {
			t.Errorf("no span in Envoy's trace %s; traces %v", tr, mapKeys(byTrace))
			continue
		}
		if p := hex.EncodeToString(s.span.GetParentSpanId()); p != envoySpan {
			t.Errorf("trace %s: parent span %q, want Envoy's %s", tr, p, envoySpan)
		}
	}
	// The client assertion's Check, sent without a trace context, is a root.
	for tr, s := range byTrace {
		if tr != bearerTrace && tr != forgedTrace && len(s.span.GetParentSpanId()) != 0 {
			t.Errorf("the Check without a traceparent has parent span %x, want a root span", s.span.GetParentSpanId())
		}
	}

	// No token in any span, attribute, event, link or resource: neither
	// whole nor any of its segments, in the wire form the receiver got,
	// nor anything that looks like a compact JWS in its JSON form.
	for i, req := range reqs {
		wire, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		text := protojson.Format(req)
		for name, tok := range tokens {
			segs := strings.Split(tok, ".")
			parts := map[string]string{"whole": tok, "form-encoded": url.QueryEscape(tok),
				"header": segs[0], "payload": segs[1], "signature": segs[2]}
			for part, p := range parts {
				if bytes.Contains(wire, []byte(p)) || strings.Contains(text, p) {
					t.Errorf("export %d holds the %s token (%s)", i, name, part)
				}
			}
		}
		if m := jwsLike.FindAllString(text, -1); m != nil {
			t.Errorf("export %d holds token-like strings %q", i, m)
		}
	}
	for _, s := range spans {
		for _, ev := range s.span.GetEvents() {
			for _, a := range ev.GetAttributes() {
				if jwsLike.MatchString(a.GetValue().GetStringValue()) {
					t.Errorf("event %q attribute %s holds a token", ev.GetName(), a.GetKey())
				}
			}
		}
	}
	if t.Failed() {
		t.Logf("exports:\n%s\nserve log:\n%s", protojsonAll(reqs), logs)
	}
}

// apiCheck is Envoy's CheckRequest for GET https://api.example.com/reports/q1.
func apiCheck(authorization string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Host: "api.example.com", Path: "/reports/q1", Scheme: "https", Protocol: "HTTP/2",
			Headers: map[string]string{
				":authority": "api.example.com", ":method": "GET", ":path": "/reports/q1", ":scheme": "https",
				"authorization": authorization,
			},
		}},
	}}
}

// tokenEndpointCheck is Envoy's CheckRequest for a client-credentials token
// request authenticated by the client assertion.
func tokenEndpointCheck(assertion string) *authv3.CheckRequest {
	body := "grant_type=client_credentials" +
		"&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer" +
		"&client_assertion=" + url.QueryEscape(assertion)
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "POST", Host: "login.example.com", Path: "/oauth/v2/oauth-token", Scheme: "https", Protocol: "HTTP/2",
			Headers: map[string]string{
				":authority": "login.example.com", ":method": "POST", ":path": "/oauth/v2/oauth-token", ":scheme": "https",
				"content-type": "application/x-www-form-urlencoded",
			},
			Body: body,
			Size: int64(len(body)),
		}},
	}}
}

// attrMap renders OTLP attributes as strings (ints in decimal).
func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = strconv.FormatInt(v.IntValue, 10)
		default:
			m[kv.GetKey()] = kv.GetValue().GetStringValue()
		}
	}
	return m
}

func mapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func protojsonAll(reqs []*collectortracepb.ExportTraceServiceRequest) string {
	var b strings.Builder
	for _, r := range reqs {
		b.WriteString(protojson.Format(r))
		b.WriteByte('\n')
	}
	return b.String()
}
