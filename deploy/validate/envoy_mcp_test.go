package validate

import "testing"

// TestEnvoyMCPMetadataRoute: in envoy-mcp.yaml the RFC 9728 well-known
// path of the MCP resource reaches extauthz (which answers the document)
// and can never reach an upstream; the MCP route names the demo policy's
// rule.
func TestEnvoyMCPMetadataRoute(t *testing.T) {
	rep, err := ValidateEnvoy(readRepo(t, "envoy/envoy-mcp.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const wellKnown = "/.well-known/oauth-protected-resource/mcp"
	var sawMetadata, sawMCP bool
	for _, r := range rep.Routes {
		switch r.Route.GetMatch().GetPath() {
		case wellKnown:
			sawMetadata = true
			if !r.AuthzEnabled {
				t.Errorf("route %q: ext_authz is off, so extauthz cannot answer %s", r.Route.GetName(), wellKnown)
			}
			if r.Forwards() {
				t.Errorf("route %q: forwards %s upstream; it must end in a direct_response", r.Route.GetName(), wellKnown)
			}
		case "/mcp":
			sawMCP = true
			if !r.AuthzEnabled || r.ContextExtensions["rule"] != "mcp-server" {
				t.Errorf("route %q: want ext_authz on with rule mcp-server, got %v %v", r.Route.GetName(), r.AuthzEnabled, r.ContextExtensions)
			}
		}
	}
	if !sawMetadata || !sawMCP {
		t.Errorf("envoy-mcp.yaml lacks the %s route (%v) or the /mcp route (%v)", wellKnown, sawMetadata, sawMCP)
	}
}
