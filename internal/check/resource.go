package check

import (
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/extauthz/extauthz/internal/policy"
)

// withResourceMetadata adds the rule's resource_metadata parameter (RFC
// 9728 §5.1) to a challenge's parameters. Every WWW-Authenticate of such a
// rule carries it, 403 insufficient_scope and 400 invalid_request too: a
// client that reads any challenge can find the authorization server.
func (d *decision) withResourceMetadata(params string) string {
	if d.rule == nil || d.rule.Resource == nil {
		return params
	}
	if params == "" {
		return d.rule.Resource.Challenge
	}
	return params + ", " + d.rule.Resource.Challenge
}

// metadataCacheControl is the Cache-Control of a served document.
var metadataCacheControl = "max-age=" + strconv.Itoa(policy.MetadataMaxAge)

// resourceMetadata answers a CheckRequest for an RFC 9728 document before
// any rule is selected, when Envoy routes the well-known path through
// ext_authz: GET (or HEAD) gets the document as a denied_response with
// HTTP status 200, which Envoy sends as a local reply; any other method a
// 405. It returns nil for every path and host that no rule's resource
// names, so those fall through to rule matching and a rule without
// resource never has a document.
func (s *Server) resourceMetadata(snap *policy.Snapshot, r *httpRequest, ext map[string]string, start time.Time, tr *trace) *authv3.CheckResponse {
	if !strings.HasPrefix(r.Path, policy.MetadataPrefix) {
		return nil
	}
	if _, bad := ext[undecodableKey]; bad {
		return nil
	}
	pr := snap.ResourceAt(r.Host, r.Path)
	if pr == nil {
		if tr != nil {
			tr.add("resource metadata", false, "no rule's protected_resource has its document at %s%s; rules decide", r.Host, r.Path)
		}
		return nil
	}
	d := &decision{reason: ReasonResourceMetadata, rule: pr.Rule}
	hs := []*corev3.HeaderValueOption{overwrite("cache-control", metadataCacheControl)}
	status, body := typev3.StatusCode_OK, string(pr.Document)
	if r.Method == "GET" || r.Method == "HEAD" {
		hs = append(hs, overwrite("content-type", "application/json"),
			// The document is public, and browser-based clients (MCP
			// inspectors) fetch it across origins.
			overwrite("access-control-allow-origin", "*"))
		if tr != nil {
			tr.add("resource metadata", true, "%s is the RFC 9728 document of %s (rule %q); answered with HTTP 200", pr.MetadataURL, pr.Resource, pr.Rule.Name)
		}
	} else {
		status, body = typev3.StatusCode_MethodNotAllowed, ""
		hs = []*corev3.HeaderValueOption{overwrite("allow", "GET, HEAD")}
		if tr != nil {
			tr.add("resource metadata", false, "%s is the RFC 9728 document of %s; %s is not GET or HEAD: HTTP 405", pr.MetadataURL, pr.Resource, r.Method)
		}
	}
	s.cfg.Metrics.observe(d, time.Since(start))
	return &authv3.CheckResponse{
		// Never OK: Envoy would pass the request on to the upstream.
		Status:          statusDenied,
		DynamicMetadata: d.metadata(&metaParts{}),
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: status}, Headers: hs, Body: body,
		}},
	}
}
