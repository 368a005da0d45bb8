package check

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/extauthz/extauthz/internal/dpop"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/replay"
	"github.com/extauthz/extauthz/internal/token"
	"github.com/extauthz/extauthz/internal/txtoken"
)

// DefaultMaxBodyBytes bounds the form body read for a client assertion.
const DefaultMaxBodyBytes = 64 << 10

// Config builds a Server.
type Config struct {
	Policy *policy.Store
	Replay replay.Store
	// ReplayFailOpen allows a client assertion when the replay store cannot
	// be asked, instead of the default 503. Loud in logs and metrics.
	ReplayFailOpen bool
	// Audit turns every rule into an audit rule: evaluate, record, allow.
	Audit bool
	// MaxBodyBytes bounds the body; a larger one is a 400 before parsing.
	MaxBodyBytes int
	TokenLimits  token.Limits
	// TokenCacheSize bounds the verified-token cache; 0 means
	// DefaultTokenCacheSize and a negative size turns caching off.
	TokenCacheSize int
	// Now is the clock; nil means time.Now.
	Now     func() time.Time
	Logger  *slog.Logger
	Metrics *Metrics
	// DecisionLogSample is the fraction of allows logged (denies always
	// are): 0 logs none, 1 all.
	DecisionLogSample float64
	// Nonces issues and checks DPoP nonces for rules that require them;
	// nil means a random secret of this process, which suits one replica.
	Nonces *dpop.Nonces
	// Tokens mints the internal tokens of rules with internal_token; a
	// Minter without Keys previews them unsigned (extauthz check, test).
	Tokens *txtoken.Minter
}

// Server is the ext_authz v3 Authorization service.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	cfg    Config
	tokens *tokenCache
	minted *mintCache
	nonces *dpop.Nonces
	// fullLogged is the second of the last "replay store full" log line.
	fullLogged atomic.Int64
	// systemClock is set when cfg.Now is time.Now (checkNow).
	systemClock bool
}

// New returns a Server. cfg.Policy and cfg.Replay are required.
func New(cfg Config) *Server {
	systemClock := cfg.Now == nil
	if systemClock {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.TokenCacheSize == 0 {
		cfg.TokenCacheSize = DefaultTokenCacheSize
	}
	nonces := cfg.Nonces
	if nonces == nil {
		// A random secret cannot be refused.
		nonces, _ = dpop.NewNonces(nil, 0, cfg.Now)
	}
	return &Server{cfg: cfg, tokens: newTokenCache(cfg.TokenCacheSize), minted: newMintCache(cfg.TokenCacheSize), nonces: nonces, systemClock: systemClock}
}

// nonceFor is the DPoP-Nonce an allow of a rule with cfg carries: the
// current nonce when the rule requires nonces, so clients never need a
// failed request to learn the next one (RFC 9449 §8.2).
func (s *Server) nonceFor(cfg *policy.DPoP) string {
	if !cfg.Nonce {
		return ""
	}
	return s.nonces.Current()
}

// Check implements the Authorization service. It returns a gRPC error only
// for a bug (a recovered panic); every deny is a normal response. Register
// serves the same Checks without building the message.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return s.checkDecoded(ctx, &decodedCheck{msg: req})
}

func (s *Server) checkDecoded(ctx context.Context, c *decodedCheck) (resp *authv3.CheckResponse, err error) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			s.cfg.Logger.Error("check: panic", "panic", p, "stack", string(debug.Stack()))
			s.cfg.Metrics.observe(&decision{reason: ReasonInternal}, time.Since(start))
			resp, err = nil, status.Error(codes.Internal, "check: internal error")
		}
	}()
	return s.checkSince(ctx, c, nil, start), nil
}

func (s *Server) check(ctx context.Context, req *authv3.CheckRequest, tr *trace) *authv3.CheckResponse {
	return s.checkSince(ctx, &decodedCheck{msg: req}, tr, time.Now())
}

// checkSince is check of a Check that started at start: the clock is read
// once for both the panic path's latency and the decision's.
func (s *Server) checkSince(ctx context.Context, c *decodedCheck, tr *trace, start time.Time) *authv3.CheckResponse {
	snap := s.cfg.Policy.Load()
	r, ext := c.view()
	r.start = start
	if resp := s.resourceMetadata(snap, r, ext, start, tr); resp != nil {
		return resp
	}
	var d *decision
	if _, bad := ext[undecodableKey]; bad {
		d = undecodable(tr)
	} else {
		d = s.decide(ctx, snap, r, ext["rule"], tr)
	}
	if !d.allow && (s.cfg.Audit || (d.rule != nil && d.rule.Audit)) {
		if tr != nil {
			tr.add("audit mode", true, "would deny (%s); allowed without headers", d.reason)
		}
		d.audit = "deny"
		d.allow, d.headers = true, nil
	} else if d.rule != nil && (s.cfg.Audit || d.rule.Audit) {
		d.audit = "allow"
	}
	if d.allow {
		if tr != nil {
			tr.add("decision", true, "allow (%s)", d.reason)
		}
	} else {
		if tr != nil {
			tr.add("decision", false, "deny: HTTP %d (%s)", d.kind.status(), d.reason)
		}
	}
	elapsed := time.Since(start)
	s.cfg.Metrics.observe(d, elapsed)
	s.log(r, d, elapsed)
	return d.response(snap, r)
}

// decide runs the policy for one request.
func (s *Server) decide(ctx context.Context, snap *policy.Snapshot, r *httpRequest, ruleName string, tr *trace) *decision {
	rule, err := snap.Select(ruleName, &r.Request)
	switch {
	case err != nil:
		if tr != nil {
			tr.add("select rule", false, "context_extensions names rule %q, which the policy does not have", ruleName)
		}
		return deny(denyAccess, ReasonUnknownRule)
	case rule == nil && snap.DefaultAllow:
		if tr != nil {
			tr.add("select rule", true, "no rule matched %s %s%s; default_action allow", r.Method, r.Host, r.Path)
		}
		return &decision{allow: true, reason: ReasonDefaultAllow}
	case rule == nil:
		if tr != nil {
			tr.add("select rule", false, "no rule matched %s %s%s; default_action deny", r.Method, r.Host, r.Path)
		}
		return deny(denyAccess, ReasonNoRule)
	case ruleName != "":
		if tr != nil {
			tr.add("select rule", true, "rule %q named by context_extensions", rule.Name)
		}
	default:
		if tr != nil {
			tr.add("select rule", true, "rule %q is the first whose match holds", rule.Name)
		}
	}
	d := s.authenticate(ctx, rule, r, tr)
	d.rule = rule
	if !d.allow {
		return d
	}
	return s.authorize(ctx, rule, r, d, tr)
}

// maxTokenBytes is the token size limit in force.
func (s *Server) maxTokenBytes() int {
	if s.cfg.TokenLimits.MaxTokenBytes > 0 {
		return s.cfg.TokenLimits.MaxTokenBytes
	}
	return token.DefaultMaxTokenBytes
}

// authorize runs the rule's CEL requirements and computes its headers for an
// authenticated (or public) request.
func (s *Server) authorize(ctx context.Context, rule *policy.Rule, r *httpRequest, d *decision, tr *trace) *decision {
	vars := d.vars
	vars.Request = &r.Request
	if r.peerCert != "" || r.principal != "" {
		vars.Peer = r.peerVar
	}
	for _, e := range rule.Require {
		ok, err := e.True(ctx, vars)
		if tr != nil {
			tr.require(e, vars, ok, err)
		}
		if !ok {
			// The decision log says requirement_failed; at debug, which one.
			if err != nil {
				s.cfg.Logger.Debug("check: require expression failed", "rule", rule.Name, "require", e.Source, "error", err)
			} else {
				s.cfg.Logger.Debug("check: require expression is false", "rule", rule.Name, "require", e.Source)
			}
			d.allow, d.kind, d.reason = false, denyAccess, ReasonRequire
			return d
		}
	}
	if len(rule.Headers) > 0 {
		d.headers = r.headerBuf(len(rule.Headers))
	}
	for _, h := range rule.Headers {
		if v, ok := h.Value(ctx, vars); ok {
			d.headers = append(d.headers, header{name: h.Name, value: v})
			if tr != nil {
				tr.add("header "+h.Name, true, "%s = %q", h.Source, v)
			}
		} else {
			if tr != nil {
				tr.add("header "+h.Name, true, "%s: no value; the header is removed", h.Source)
			}
		}
	}
	s.ruleMetadata(ctx, rule, vars, d, tr)
	if rule.InternalToken != nil {
		s.internalToken(ctx, rule, d, tr)
	}
	return d
}

// log writes the decision log: one line per deny, and a sample of allows.
// It never carries the token or any secret.
func (s *Server) log(r *httpRequest, d *decision, elapsed time.Duration) {
	if d.allow && (s.cfg.DecisionLogSample <= 0 || rand.Float64() >= s.cfg.DecisionLogSample) {
		return
	}
	lg := s.cfg.Logger
	if !lg.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	rule, issuer := "", ""
	if d.rule != nil {
		rule = d.rule.Name
	}
	if d.issuer != nil {
		issuer = d.issuer.Name
	}
	decisionName := "deny"
	if d.allow {
		decisionName = "allow"
	}
	attrs := []slog.Attr{
		slog.String("decision", decisionName), slog.String("rule", rule), slog.String("reason", d.reason),
		slog.String("issuer", issuer), slog.String("client_id", printable(d.clientID)), slog.String("spiffe_id", d.spiffeID),
		slog.String("request_id", r.headerValue("x-request-id")), slog.String("method", r.Method),
		slog.String("host", r.Host), slog.String("path", r.Path), slog.Int64("latency_us", elapsed.Microseconds()),
	}
	if !d.allow {
		attrs = append(attrs, slog.Int("status", d.kind.status()))
	}
	if d.audit != "" {
		attrs = append(attrs, slog.String("audit_decision", d.audit))
	}
	lg.LogAttrs(context.Background(), slog.LevelInfo, "decision", attrs...)
}

// tokenReason maps a token package error to its reason code.
func tokenReason(err error) string {
	switch {
	case errors.Is(err, token.ErrAlgorithm):
		return ReasonAlgorithm
	case errors.Is(err, token.ErrCritical):
		return ReasonCritical
	case errors.Is(err, token.ErrClaimType):
		return ReasonClaimType
	case errors.Is(err, token.ErrNoKey):
		return ReasonNoKey
	case errors.Is(err, token.ErrSignature):
		return ReasonSignature
	case errors.Is(err, token.ErrExpired):
		return ReasonExpired
	case errors.Is(err, token.ErrNotYetValid):
		return ReasonNotYetValid
	case errors.Is(err, token.ErrIssuedInFuture):
		return ReasonIssuedInFuture
	case errors.Is(err, token.ErrMissingExpiry):
		return ReasonExpMissing
	}
	return ReasonMalformedToken
}
