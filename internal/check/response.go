package check

import (
	"strconv"
	"strings"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/extauthz/extauthz/internal/policy"
)

// decision is the outcome of one Check, before it becomes Envoy's response.
type decision struct {
	allow  bool
	reason string
	kind   denyKind // for denies
	rule   *policy.Rule
	issuer *policy.Issuer
	// clientID and spiffeID identify the caller once the token verified.
	clientID string
	spiffeID string
	// headers are the rule's headers to set on an allowed request.
	headers []header
	// meta are the rule's metadata members of an allow (metadata.go).
	meta []metaMember
	// vars are the CEL variables once the credential is known.
	vars *policy.Vars
	// retryAfter is the 503's Retry-After in seconds, 0 for the default.
	retryAfter int
	// audit is the would-be decision ("allow" or "deny") under audit mode.
	audit string
	// scheme is the Authorization scheme the access token came in; it
	// picks the challenge of a DPoP rule.
	scheme tokenScheme
	// nonce, when set, is sent in DPoP-Nonce: with use_dpop_nonce, and on
	// every allow of a rule that requires nonces.
	nonce string
	// token is the bearer token that authenticated the request, the key of
	// its internal-token reuse (internaltoken.go); tokenSum is its
	// token.DigestOf Sum when the token cache computed it already
	// (tokenSummed).
	token       string
	tokenSum    [32]byte
	tokenSummed bool
}

type header struct{ name, value string }

func deny(kind denyKind, reason string) *decision {
	return &decision{kind: kind, reason: reason}
}

// okParts is an allowed CheckResponse in one allocation: the response, its
// oneof wrapper, the OkHttpResponse, the metadata and its token-supplied
// values, and room for one header (the common case), instead of an
// allocation for each.
type okParts struct {
	resp  authv3.CheckResponse
	oneof authv3.CheckResponse_OkResponse
	ok    authv3.OkHttpResponse
	meta  metaParts
	opt   [1]corev3.HeaderValueOption
	val   [1]corev3.HeaderValue
	ptr   [1]*corev3.HeaderValueOption
}

// metaParts holds the metadata Struct and the values that cannot be
// interned.
type metaParts struct {
	st                   structpb.Struct
	clientID, spiffeID   structpb.Value
	clientIDS, spiffeIDS structpb.Value_StringValue
}

// response turns d into Envoy's CheckResponse, an allow's in r's scratch.
func (d *decision) response(snap *policy.Snapshot, r *httpRequest) *authv3.CheckResponse {
	if d.allow {
		p := r.newOKParts()
		resp := &p.resp
		resp.DynamicMetadata = r.metaMemos().metadata(d, &p.meta)
		resp.Status = statusOK
		ok := &p.ok
		d.okResponse(snap, p)
		if d.nonce != "" {
			ok.ResponseHeadersToAdd = []*corev3.HeaderValueOption{overwrite("dpop-nonce", d.nonce)}
		}
		p.oneof.OkResponse = ok
		resp.HttpResponse = &p.oneof
		return resp
	}
	resp := &authv3.CheckResponse{DynamicMetadata: d.metadata(&metaParts{})}
	resp.Status = statusDenied
	if d.kind.status() == 401 {
		resp.Status = statusUnauthenticated
	}
	resp.HttpResponse = &authv3.CheckResponse_DeniedResponse{DeniedResponse: d.deniedResponse(snap)}
	return resp
}

// The gRPC statuses of responses are shared: Envoy only reads them.
var (
	statusOK              = &rpcstatus.Status{Code: int32(codes.OK)}
	statusUnauthenticated = &rpcstatus.Status{Code: int32(codes.Unauthenticated)}
	statusDenied          = &rpcstatus.Status{Code: int32(codes.PermissionDenied)}
)

// okResponse sets the rule's headers, overwriting whatever the client sent,
// and removes every other managed header, so a client can never smuggle
// x-client-id (or x_client_id) to the upstream.
func (d *decision) okResponse(snap *policy.Snapshot, p *okParts) {
	ok := &p.ok
	switch len(d.headers) {
	case 0:
	case 1:
		p.val[0] = corev3.HeaderValue{Key: d.headers[0].name, Value: d.headers[0].value}
		p.opt[0].Header, p.opt[0].AppendAction = &p.val[0], corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		p.ptr[0] = &p.opt[0]
		ok.Headers = p.ptr[:]
	default:
		opts := make([]corev3.HeaderValueOption, len(d.headers))
		vals := make([]corev3.HeaderValue, len(d.headers))
		ok.Headers = make([]*corev3.HeaderValueOption, len(d.headers))
		for i, h := range d.headers {
			vals[i] = corev3.HeaderValue{Key: h.name, Value: h.value}
			opts[i] = corev3.HeaderValueOption{Header: &vals[i], AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}
			ok.Headers[i] = &opts[i]
		}
	}
	switch {
	case d.rule != nil && len(d.headers) == d.rule.SetHeaders():
		// Every header of the rule is set: the rule's precomputed list.
		ok.HeadersToRemove = d.rule.Remove
	case len(snap.Managed) > 0:
		ok.HeadersToRemove = make([]string, 0, len(snap.Managed))
	next:
		for _, m := range snap.Managed {
			for _, h := range d.headers {
				if h.name == m {
					continue next
				}
			}
			ok.HeadersToRemove = append(ok.HeadersToRemove, m)
		}
	}
}

// overwrite is a response header that replaces any of its name.
func overwrite(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: k, Value: v},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// challenge is the WWW-Authenticate value of a resource server's deny with
// params (`error="..."` and the like, "" for none). A rule without DPoP
// challenges with Bearer (RFC 6750 §3). A rule that requires DPoP challenges
// with DPoP and its algs (RFC 9449 §7.1). A rule that takes either answers in
// the scheme the token came in, and offers both when none came.
func (d *decision) challenge(realm, params string) string {
	params = d.withResourceMetadata(params)
	var dp *policy.DPoP
	if d.rule != nil && d.rule.Bearer != nil {
		dp = d.rule.Bearer.DPoP
	}
	bearer := `Bearer realm="` + realm + `"`
	if params != "" {
		bearer += ", " + params
	}
	if dp == nil {
		return bearer
	}
	dpopChallenge := `DPoP realm="` + realm + `"`
	if params != "" {
		dpopChallenge += ", " + params
	}
	dpopChallenge += `, algs="` + dp.Algs + `"`
	switch {
	case dp.Required || d.scheme == schemeDPoP:
		return dpopChallenge
	case d.scheme == schemeNone:
		return bearer + ", " + dpopChallenge
	}
	return bearer
}

func (d *decision) deniedResponse(snap *policy.Snapshot) *authv3.DeniedHttpResponse {
	realm := snap.Realm
	var hs []*corev3.HeaderValueOption
	add := func(k, v string) { hs = append(hs, overwrite(k, v)) }
	body := ""
	switch d.kind {
	case denyBearerMissing:
		add("www-authenticate", d.challenge(realm, ""))
	case denyBearerInvalid:
		add("www-authenticate", d.challenge(realm, `error="invalid_token"`))
	case denyBearerScope:
		scopes := ""
		if d.rule != nil && d.rule.Bearer != nil {
			scopes = d.rule.Bearer.ScopeList
		}
		add("www-authenticate", d.challenge(realm, `error="insufficient_scope", scope="`+scopes+`"`))
	case denyStepUp:
		add("www-authenticate", d.challenge(realm, d.stepUpParams()))
	case denyDPoPProof:
		d.scheme = schemeDPoP
		add("www-authenticate", d.challenge(realm, `error="invalid_dpop_proof"`))
	case denyDPoPNonce:
		d.scheme = schemeDPoP
		add("www-authenticate", d.challenge(realm, `error="use_dpop_nonce"`))
		add("dpop-nonce", d.nonce)
	case denyTokenDPoPProof:
		body = `{"error":"invalid_dpop_proof"}`
	case denyTokenDPoPNonce:
		body = `{"error":"use_dpop_nonce"}`
		add("dpop-nonce", d.nonce)
	case denyInvalidClient:
		body = `{"error":"invalid_client"}`
	case denyInvalidGrant:
		body = `{"error":"invalid_grant"}`
	case denyInvalidRequest:
		body = `{"error":"invalid_request"}`
		if d.rule != nil && d.rule.Bearer != nil && d.rule.ClientAssertion == nil {
			add("www-authenticate", d.challenge(realm, `error="invalid_request"`))
		}
	case denyAccess:
		body = `{"error":"access_denied"}`
	case denyUnavailable:
		body = `{"error":"temporarily_unavailable"}`
		ra := d.retryAfter
		if ra <= 0 {
			ra = retryAfterSeconds
		}
		add("retry-after", strconv.Itoa(ra))
	}
	if body != "" {
		add("content-type", "application/json")
		add("cache-control", "no-store")
	}
	return &authv3.DeniedHttpResponse{
		Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.kind.status())},
		Headers: hs,
		Body:    body,
	}
}

// retryAfterSeconds is what a 503 tells clients when nothing better is
// known: short enough not to stall a token endpoint.
const retryAfterSeconds = 5

// metadata is the spec's dynamic_metadata, for Envoy's access logs and rate
// limits, built in p.
func (d *decision) metadata(p *metaParts) *structpb.Struct {
	decision, rule, issuer := "deny", "", ""
	if d.allow {
		decision = "allow"
	}
	if d.rule != nil {
		rule = d.rule.Name
	}
	if d.issuer != nil {
		issuer = d.issuer.Name
	}
	f := make(map[string]*structpb.Value, 7+len(d.meta))
	f["decision"] = constValue(decision)
	f["rule"] = constValue(rule)
	f["reason"] = constValue(d.reason)
	f["issuer"] = constValue(issuer)
	f["client_id"] = p.stringValue(&p.clientID, &p.clientIDS, printable(d.clientID))
	f["spiffe_id"] = p.stringValue(&p.spiffeID, &p.spiffeIDS, d.spiffeID)
	if d.audit != "" {
		f["audit_decision"] = constValue(d.audit)
	}
	for _, m := range d.meta {
		// Never over a fixed member, even one added after the policy's
		// reserved list was written.
		if _, fixed := f[m.name]; !fixed {
			f[m.name] = m.value
		}
	}
	p.st.Fields = f
	return &p.st
}

// stringValue is s as a Value: the shared one for "", else v holding s.
func (p *metaParts) stringValue(v *structpb.Value, k *structpb.Value_StringValue, s string) *structpb.Value {
	if s == "" {
		return constValue("")
	}
	k.StringValue = s
	v.Kind = k
	return v
}

// constValues interns the metadata values drawn from small fixed sets
// (decisions, reason codes, rule and issuer names of the policy), so a Check
// does not allocate them: responses only ever read them. Token-supplied
// values (client and SPIFFE ids) are never interned.
var constValues sync.Map

func constValue(s string) *structpb.Value {
	if v, ok := constValues.Load(s); ok {
		return v.(*structpb.Value)
	}
	v, _ := constValues.LoadOrStore(s, structpb.NewStringValue(s))
	return v.(*structpb.Value)
}

// printable replaces control characters in a token-supplied value bound for
// access logs, where a CR or LF could forge a log line.
func printable(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return strings.Map(func(r rune) rune {
				if r < 0x20 || r == 0x7f {
					return '?'
				}
				return r
			}, s)
		}
	}
	return s
}
