package adversarial_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/logtest"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/extauthz/extauthz/internal/check"
)

// Envoy forwards header names and values, the path and the body as the
// bytes that came, in proto3 string fields, which protobuf-go decodes only
// as UTF-8. These tests put such bytes on the wire, as Envoy does: a Go
// client cannot (proto.Marshal refuses them too), so each request is a
// valid one marshalled with a placeholder whose bytes are then overwritten.

// badPlaceholder survives form and URL encoding and lower-casing; badBytes,
// of its length, is Latin-1 and stray bytes: what a client sends and Envoy
// passes on.
const (
	badPlaceholder = "~~bad~~~"
	badBytes       = "caf\xe9\xff\xfe~~"
)

// rawCodec sends a []byte message as it is, and anything else as proto.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.([]byte); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	b, err := proto.Marshal(v.(proto.Message))
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

// wire is r marshalled. With bad, every badPlaceholder in it is overwritten
// by badBytes, and gRPC's own codec must refuse the result.
func wire(t testing.TB, r req, bad bool) []byte {
	t.Helper()
	b, err := proto.Marshal(r.proto())
	if err != nil {
		t.Fatal(err)
	}
	if !bad {
		return b
	}
	if !bytes.Contains(b, []byte(badPlaceholder)) {
		t.Fatalf("no %q in the request to overwrite", badPlaceholder)
	}
	b = bytes.ReplaceAll(b, []byte(badPlaceholder), []byte(badBytes))
	if proto.Unmarshal(b, &authv3.CheckRequest{}) == nil {
		t.Fatal("the request decodes with gRPC's codec; the test proves nothing")
	}
	return b
}

// checkRaw sends the bytes b as a CheckRequest.
func checkRaw(conn *grpc.ClientConn, b []byte) (*authv3.CheckResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp := &authv3.CheckResponse{}
	err := conn.Invoke(ctx, authv3.Authorization_Check_FullMethodName, b, resp, grpc.ForceCodecV2(rawCodec{}))
	return resp, err
}

// TestUndecodable: invalid UTF-8 anywhere Envoy puts request bytes is a 400
// invalid_request with reason request_undecodable, through the harness's
// gRPC server, built with check.ServerCodec as extauthz serve builds it; never
// a gRPC error, which Envoy's failure_mode_allow would turn into an allow.
func TestUndecodable(t *testing.T) {
	reg := prometheus.NewRegistry()
	var logs logtest.Buffer
	h := newHarness(t, func(c *check.Config) {
		c.Metrics = check.NewMetrics(reg)
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	conn := h.conn
	bearer := "Bearer " + signLogin(h.loginClaims())
	api := apiReq(bearer)
	assertion := assertionReq(signRSA(h.rsaClaims()))

	attacks := []struct {
		name string
		req  req
	}{
		{"header value", api.with("x-note", badPlaceholder)},
		{"authorization value", apiReq("Bearer " + badPlaceholder)},
		{"authorization value after a valid token", apiReq(bearer + badPlaceholder)},
		{"body", tokenReq(assertion.body + "&note=" + badPlaceholder)},
		{"body on a path no rule matches", req{method: "POST", host: "api.example.com", path: "/upload", body: badPlaceholder}},
		{"path", req{method: "GET", host: "api.example.com", path: "/api/" + badPlaceholder}.with("authorization", bearer)},
		{"host", req{method: "GET", host: badPlaceholder + ".example.com", path: "/api/reports"}.with("authorization", bearer)},
		{"header name", api.with("x-"+badPlaceholder, "v")},
		{"header name, raw headers", api.with("x-"+badPlaceholder, "v").raw()},
		{"token endpoint header", assertion.with("user-agent", badPlaceholder)},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			resp, err := checkRaw(conn, wire(t, a.req, true))
			if err != nil {
				t.Fatalf("Check returned a gRPC error (a deny is never one): %v", err)
			}
			assertDeny(t, resp, invalidRequest(check.ReasonUndecodable))
			d := resp.GetDeniedResponse()
			headers := map[string]string{}
			for _, hv := range d.GetHeaders() {
				headers[hv.GetHeader().GetKey()] = hv.GetHeader().GetValue()
			}
			if d.GetBody() != `{"error":"invalid_request"}` || headers["content-type"] != "application/json" || headers["cache-control"] != "no-store" {
				t.Errorf("deny body %q, headers %v", d.GetBody(), headers)
			}
		})
	}

	// The same server decides valid requests as ever, sent the same way.
	t.Run("valid requests", func(t *testing.T) {
		for _, c := range []struct {
			name string
			req  req
			want string // the reason code
		}{
			{"bearer token", api, check.ReasonAllowed},
			{"client assertion", assertion, check.ReasonAllowed},
			{"no credential", apiReq(""), check.ReasonMissing},
			// header_map values and raw_body are bytes, not strings: they
			// decode whatever they hold and get the normal decision.
			{"invalid UTF-8 in a raw header value", api.with("x-note", "caf\xe9").raw(), check.ReasonAllowed},
		} {
			resp, err := checkRaw(conn, wire(t, c.req, false))
			if err != nil {
				t.Fatalf("%s: gRPC error %v", c.name, err)
			}
			if got := metadata(resp)["reason"]; got != c.want {
				t.Errorf("%s: reason %q, want %q", c.name, got, c.want)
			}
		}
	})

	// What the codec is for: the same Check server served without it turns
	// the same bytes into a gRPC Internal, and Envoy's failure_mode_allow
	// decides.
	t.Run("without ServerCodec", func(t *testing.T) {
		plain := serve(t, func(gs grpc.ServiceRegistrar) { authv3.RegisterAuthorizationServer(gs, h.srv) })
		_, err := checkRaw(plain, wire(t, attacks[0].req, true))
		if status.Code(err) != codes.Internal {
			t.Errorf("got %v, want the Internal error check.ServerCodec exists to prevent", err)
		}
	})

	// Metrics and the decision log see these denies like any other.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var counted float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() != "extauthz_decisions_total" {
				continue
			}
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["decision"] == "deny" && labels["reason"] == check.ReasonUndecodable {
				counted += m.GetCounter().GetValue()
			}
		}
	}
	logged := 0
	for line := range strings.SplitSeq(logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["reason"] == check.ReasonUndecodable {
			logged++
			if rec["decision"] != "deny" || rec["status"] != 400.0 {
				t.Errorf("decision log line %s", line)
			}
		}
	}
	if n := len(attacks); counted != float64(n) || logged != n {
		t.Errorf("%d attacks: extauthz_decisions_total{reason=%q} = %v, decision log lines %d", n, check.ReasonUndecodable, counted, logged)
	}
}
