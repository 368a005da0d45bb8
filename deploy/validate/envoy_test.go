package validate

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoregistry"
	"sigs.k8s.io/yaml"
)

// extauthz's defaults that the Envoy settings must agree with
// (cmd/extauthz: --fetch-wait, --max-body-bytes).
const (
	fetchWait    = 150 * time.Millisecond
	maxAuthzWait = 250 * time.Millisecond
	maxBodyBytes = 64 << 10
)

// bootstraps lists envoy/*.yaml files that are Envoy bootstraps.
func bootstraps(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(repoPath("envoy/*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		var top map[string]any
		if err := yaml.Unmarshal(readRepo(t, "envoy/"+filepath.Base(f)), &top); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, ok := top["static_resources"]; ok {
			out = append(out, "envoy/"+filepath.Base(f))
		}
	}
	if len(out) == 0 {
		t.Fatal("no Envoy bootstrap in envoy/")
	}
	return out
}

func TestEnvoyBootstraps(t *testing.T) {
	pd, err := ReadPolicyDir(composePolicyDir(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range bootstraps(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			rep, err := ValidateEnvoy(readRepo(t, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := checkEnvoySetup(rep, pd); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// checkEnvoySetup checks what the project relies on in an Envoy config in
// front of extauthz, beyond what Envoy itself would accept.
func checkEnvoySetup(rep *EnvoyReport, pd *PolicyDir) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if a := rep.Bootstrap.GetAdmin().GetAddress().GetSocketAddress(); a != nil {
		if ip := net.ParseIP(a.GetAddress()); ip == nil || !ip.IsLoopback() {
			add("admin listens on %s: keep it on loopback", a.GetAddress())
		}
	}
	if len(rep.ExtAuthz) == 0 {
		add("no ext_authz filter")
	}
	for path, ea := range rep.ExtAuthz {
		if ea.GetTransportApiVersion() != corev3.ApiVersion_V3 {
			add("%s: transport_api_version must be V3", path)
		}
		if ea.GetFailureModeAllow() {
			add("%s: failure_mode_allow must be false: an unreachable extauthz must not allow", path)
		}
		if ea.GetStatusOnError().GetCode() != typev3.StatusCode_ServiceUnavailable {
			add("%s: status_on_error must be 503", path)
		}
		gs := ea.GetGrpcService()
		if gs.GetEnvoyGrpc() == nil {
			add("%s: want grpc_service.envoy_grpc", path)
		}
		if to := gs.GetTimeout().AsDuration(); to <= fetchWait || to > maxAuthzWait {
			add("%s: grpc_service.timeout %v: want above extauthz's --fetch-wait (%v), at most %v", path, to, fetchWait, maxAuthzWait)
		}
		b := ea.GetWithRequestBody()
		if b == nil || !b.GetPackAsBytes() || b.GetAllowPartialMessage() || b.GetMaxRequestBytes() > maxBodyBytes {
			add("%s: with_request_body must be set, pack_as_bytes, no partial messages, max_request_bytes <= %d (extauthz's --max-body-bytes)", path, maxBodyBytes)
		}
		for _, c := range rep.Bootstrap.GetStaticResources().GetClusters() {
			if c.GetName() != gs.GetEnvoyGrpc().GetClusterName() {
				continue
			}
			var po upstreamhttpv3.HttpProtocolOptions
			a := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
			if a == nil || a.UnmarshalTo(&po) != nil || po.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
				add("cluster %s: gRPC needs explicit HTTP/2 (typed_extension_protocol_options)", c.GetName())
			}
			if len(c.GetHealthChecks()) == 0 {
				add("cluster %s: no health check: a draining extauthz would keep getting Checks", c.GetName())
			}
		}
	}
	for path, ea := range rep.ExtAuthz {
		// DPoP (RFC 9449): the proof travels in its own header, next to
		// the token in Authorization.
		for _, h := range []string{"authorization", "dpop"} {
			ok, err := HeaderReachesAuthz(ea, h)
			switch {
			case err != nil:
				add("%s: allowed_headers / disallowed_headers: %v", path, err)
			case !ok:
				add("%s: the %s request header does not reach extauthz (allowed_headers / disallowed_headers)", path, h)
			}
		}
	}
	for _, fc := range rep.FilterChains {
		for _, ea := range fc.ExtAuthz {
			if !ea.GetIncludePeerCertificate() {
				continue
			}
			if err := VerifiesClientCertificates(fc.TLS); err != nil {
				add("%s: include_peer_certificate, but %v: extauthz gets no verified certificate to bind tokens to", fc.Path, err)
			}
		}
	}
	managed := map[string]bool{}
	for _, h := range pd.ManagedHeaders {
		managed[h] = true
	}
	for _, r := range rep.Routes {
		name := fmt.Sprintf("route %q (%s)", r.Route.GetName(), r.Path)
		for h := range r.AddedHeaders() {
			if managed[h] {
				add("%s: adds %s, a header extauthz manages", name, h)
			}
		}
		// extauthz's DPoP challenges and nonces are for the client.
		for _, h := range []string{"dpop-nonce", "www-authenticate"} {
			if r.RemovedResponseHeaders()[h] {
				add("%s: removes the %s response header extauthz sends to the client", name, h)
			}
		}
		removed := r.RemovedHeaders()
		if r.AuthzEnabled {
			if rule := r.ContextExtensions["rule"]; r.Forwards() && !pd.Rules[rule] {
				add("%s: context_extensions rule %q is not a rule of the policy", name, rule)
			}
			for h := range removed {
				if managed[h] {
					add("%s: removes %s after ext_authz set it (request_headers_to_remove runs in the router)", name, h)
				}
			}
		} else if r.Forwards() {
			for _, h := range pd.ManagedHeaders {
				if !removed[h] {
					add("%s: ext_authz is off here, so the route must remove %s (request_headers_to_remove)", name, h)
				}
			}
		}
	}
	for _, l := range rep.Bootstrap.GetStaticResources().GetListeners() {
		js, _ := protojson.Marshal(l)
		for _, key := range []string{"decision", "reason", "rule", "client_id"} {
			if want := "%DYNAMIC_METADATA(" + ExtAuthzFilterName + ":" + key + ")%"; !strings.Contains(string(js), want) {
				add("listener %s: no access log field %s", l.GetName(), want)
			}
		}
		if !strings.Contains(string(js), `"headersWithUnderscoresAction":"DROP_HEADER"`) && !strings.Contains(string(js), `"headersWithUnderscoresAction":"REJECT_REQUEST"`) {
			add("listener %s: headers_with_underscores_action must drop or reject x_client_id and friends", l.GetName())
		}
	}
	return errors.Join(errs...)
}

// TestEnvoyBrokenCopies proves the checks catch what they are for: each
// copy of envoy.yaml breaks one thing and must fail.
func TestEnvoyBrokenCopies(t *testing.T) {
	src := readRepo(t, "envoy/envoy.yaml")
	pd, err := ReadPolicyDir(composePolicyDir(t))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		old, new string
		want     []string
		// plainOK: a plain Bootstrap.ValidateAll accepts it (the error is
		// inside an Any).
		plainOK bool
	}{
		{
			name: "invalid value in the ext_authz typed_config",
			old:  "max_request_bytes: 65536", new: "max_request_bytes: 0",
			want: []string{"ExtAuthz", "MaxRequestBytes"}, plainOK: true,
		},
		{
			name: "invalid value in a per-route typed_per_filter_config",
			old: `                                # Bearer tokens are in a header: do not
                                # buffer API bodies.
                                disable_request_body_buffering: true`,
			new:  `                                with_request_body: { max_request_bytes: 0 }`,
			want: []string{"ExtAuthzPerRoute", "MaxRequestBytes"}, plainOK: true,
		},
		{
			name: "route to a missing cluster",
			old:  "cluster: reports_api\n                            timeout: 30s", new: "cluster: report_api\n                            timeout: 30s",
			want: []string{`cluster "report_api" is not defined`}, plainOK: true,
		},
		{
			name: "ext_authz service on a missing cluster",
			old:  "envoy_grpc:\n                          cluster_name: extauthz", new: "envoy_grpc:\n                          cluster_name: ext-authz",
			want: []string{`cluster "ext-authz" is not defined`}, plainOK: true,
		},
		{
			name: "unknown field in typed_config",
			old:  "failure_mode_allow: false", new: "failure_mode_alow: false",
			want: []string{"failure_mode_alow"},
		},
		{
			name: "unresolvable typed_config type",
			old:  "v3.ExtAuthz\n", new: "v3.ExtAuthorization\n",
			want: []string{"ExtAuthorization"},
		},
		{
			name: "deprecated field",
			old:  "connect_timeout: 0.25s", new: "connect_timeout: 0.25s\n      http2_protocol_options: {}",
			want: []string{"http2_protocol_options: deprecated"}, plainOK: true,
		},
		{
			name: "per-route config for a filter not in the chain",
			old: `                            envoy.filters.http.ext_authz:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute
                              check_settings:
                                context_extensions:
                                  rule: token-endpoint`,
			new: `                            envoy.filters.http.extauthz:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute
                              check_settings:
                                context_extensions:
                                  rule: token-endpoint`,
			want: []string{`typed_per_filter_config["envoy.filters.http.extauthz"]: no such filter`}, plainOK: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			broken := mustReplace(t, src, c.old, c.new)
			_, err := ValidateEnvoy(broken)
			wantErr(t, err, c.want...)
			if c.plainOK {
				js, err := yaml.YAMLToJSON(broken)
				if err != nil {
					t.Fatal(err)
				}
				var bs bootstrapv3.Bootstrap
				if err := (protojson.UnmarshalOptions{Resolver: protoregistry.GlobalTypes}).Unmarshal(js, &bs); err != nil {
					t.Fatal(err)
				}
				if err := bs.ValidateAll(); err != nil {
					t.Fatalf("plain ValidateAll already fails, so this case proves nothing: %v", err)
				}
			}
		})
	}

	// Copies that Envoy would accept but that break the project's setup.
	setup := []struct {
		name     string
		old, new string
		want     string
	}{
		{"fail open", "failure_mode_allow: false", "failure_mode_allow: true", "failure_mode_allow must be false"},
		{"timeout too long", " timeout: 0.25s\n", " timeout: 2s\n", "grpc_service.timeout 2s"},
		{"timeout below --fetch-wait", " timeout: 0.25s\n", " timeout: 0.1s\n", "grpc_service.timeout 100ms"},
		{"partial bodies", "allow_partial_message: false", "allow_partial_message: true", "with_request_body"},
		{"unknown rule", "rule: reports-api", "rule: report-api", `rule "report-api" is not a rule`},
		{
			"public route keeps managed headers",
			"                          request_headers_to_remove:\n                            - x-client-id\n",
			"                          request_headers_to_remove:\n",
			"must remove x-client-id",
		},
		{
			"protected route removes a managed header",
			"                            timeout: 10s\n",
			"                            timeout: 10s\n                          request_headers_to_remove: [x-client-id]\n",
			"removes x-client-id after ext_authz set it",
		},
		{"underscore headers allowed", "headers_with_underscores_action: DROP_HEADER", "headers_with_underscores_action: ALLOW", "headers_with_underscores_action"},
		{"no decision in the access log", "authz_decision: \"%DYNAMIC_METADATA(envoy.filters.http.ext_authz:decision)%\"", "", "ext_authz:decision"},
		{
			"DPoP proofs withheld from extauthz",
			"validate_mutations: true\n",
			"validate_mutations: true\n                      disallowed_headers: { patterns: [{ exact: dpop }] }\n",
			"the dpop request header does not reach extauthz",
		},
		{
			"header allow-list without DPoP",
			"validate_mutations: true\n",
			"validate_mutations: true\n                      allowed_headers: { patterns: [{ exact: authorization }, { prefix: x- }] }\n",
			"the dpop request header does not reach extauthz",
		},
		{
			"header allow-list without Authorization",
			"validate_mutations: true\n",
			"validate_mutations: true\n                      allowed_headers: { patterns: [{ safe_regex: { regex: \"dpop|x-.*\" } }] }\n",
			"the authorization request header does not reach extauthz",
		},
		{
			"DPoP-Nonce removed from responses",
			"                  name: ingress\n",
			"                  name: ingress\n                  response_headers_to_remove: [DPoP-Nonce]\n",
			"removes the dpop-nonce response header",
		},
		{
			"WWW-Authenticate removed from responses",
			"                            timeout: 30s\n",
			"                            timeout: 30s\n                          response_headers_to_remove: [www-authenticate]\n",
			"removes the www-authenticate response header",
		},
		{
			"peer certificate asked for on a plaintext listener",
			"validate_mutations: true\n",
			"validate_mutations: true\n                      include_peer_certificate: true\n",
			"include_peer_certificate, but plaintext",
		},
	}
	for _, c := range setup {
		t.Run(c.name, func(t *testing.T) {
			rep, err := ValidateEnvoy(mustReplace(t, src, c.old, c.new))
			if err != nil {
				t.Fatalf("Envoy would reject this copy, so it proves nothing: %v", err)
			}
			wantErr(t, checkEnvoySetup(rep, pd), c.want)
		})
	}

	// A header allow-list that keeps what extauthz reads is fine: the
	// header checks evaluate matchers, they do not just reject any list.
	rep, err := ValidateEnvoy(mustReplace(t, src, "validate_mutations: true\n",
		"validate_mutations: true\n                      allowed_headers: { patterns: [{ exact: Authorization, ignore_case: true }, { exact: DPoP, ignore_case: true }, { prefix: x- }] }\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkEnvoySetup(rep, pd); err != nil {
		t.Errorf("an allow-list with authorization and dpop: %v", err)
	}
}
