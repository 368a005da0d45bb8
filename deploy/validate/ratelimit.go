package validate

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"sigs.k8s.io/yaml"
)

// FixedMetadata are the dynamic_metadata members extauthz sets on every
// decision (internal/policy.FixedMetadata; this module does not import the
// main one).
var FixedMetadata = []string{"decision", "rule", "reason", "issuer", "client_id", "spiffe_id", "audit_decision"}

// RateLimitConfig is envoyproxy/ratelimit's configuration file: a domain
// and its tree of descriptors. Decoded strictly, so a misspelt field is an
// error here as it is in the service.
type RateLimitConfig struct {
	Domain      string                `json:"domain"`
	Descriptors []RateLimitDescriptor `json:"descriptors"`
}

// RateLimitDescriptor is one node of the tree: a descriptor entry's key
// and, when set, the one value it matches (else one bucket per value).
type RateLimitDescriptor struct {
	Key            string                `json:"key"`
	Value          string                `json:"value,omitempty"`
	RateLimit      *RateLimitLimit       `json:"rate_limit,omitempty"`
	Descriptors    []RateLimitDescriptor `json:"descriptors,omitempty"`
	ShadowMode     bool                  `json:"shadow_mode,omitempty"`
	DetailedMetric bool                  `json:"detailed_metric,omitempty"`
}

// RateLimitLimit is a node's limit.
type RateLimitLimit struct {
	Unit            string `json:"unit,omitempty"`
	RequestsPerUnit uint32 `json:"requests_per_unit,omitempty"`
	Unlimited       bool   `json:"unlimited,omitempty"`
	Name            string `json:"name,omitempty"`
}

var rateLimitUnits = []string{"second", "minute", "hour", "day", "week", "month", "year"}

// ReadRateLimitConfig decodes and checks a ratelimit configuration: a
// domain, every node keyed, no two siblings alike (the service refuses
// them), every limit either unlimited or a positive rate in a known unit.
func ReadRateLimitConfig(src []byte) (*RateLimitConfig, error) {
	var c RateLimitConfig
	if err := yaml.UnmarshalStrict(src, &c); err != nil {
		return nil, fmt.Errorf("ratelimit: %w", err)
	}
	var errs []error
	if c.Domain == "" {
		errs = append(errs, errors.New("ratelimit: domain is required"))
	}
	var walk func(path string, ds []RateLimitDescriptor)
	walk = func(path string, ds []RateLimitDescriptor) {
		seen := map[string]bool{}
		for i, d := range ds {
			p := fmt.Sprintf("%s[%d]", path, i)
			if d.Key == "" {
				errs = append(errs, fmt.Errorf("ratelimit: %s: key is required", p))
			}
			if id := d.Key + "=" + d.Value; seen[id] {
				errs = append(errs, fmt.Errorf("ratelimit: %s: %s is listed twice", p, id))
			} else {
				seen[id] = true
			}
			if l := d.RateLimit; l != nil {
				switch {
				case l.Unlimited && (l.Unit != "" || l.RequestsPerUnit != 0):
					errs = append(errs, fmt.Errorf("ratelimit: %s.rate_limit: unlimited takes no unit or requests_per_unit", p))
				case !l.Unlimited && (!slices.Contains(rateLimitUnits, strings.ToLower(l.Unit)) || l.RequestsPerUnit == 0):
					errs = append(errs, fmt.Errorf("ratelimit: %s.rate_limit: want a unit (%s) and requests_per_unit > 0", p, strings.Join(rateLimitUnits, ", ")))
				}
			}
			walk(p+".descriptors", d.Descriptors)
		}
	}
	walk("descriptors", c.Descriptors)
	return &c, errors.Join(errs...)
}

// Limits reports whether some path of the tree has exactly keys, in order,
// ending at a node with a limit: a descriptor of those keys is counted.
func (c *RateLimitConfig) Limits(keys []string) bool {
	var match func(ds []RateLimitDescriptor, keys []string) bool
	match = func(ds []RateLimitDescriptor, keys []string) bool {
		for _, d := range ds {
			if d.Key != keys[0] {
				continue
			}
			if len(keys) == 1 && d.RateLimit != nil {
				return true
			}
			if len(keys) > 1 && match(d.Descriptors, keys[1:]) {
				return true
			}
		}
		return false
	}
	return len(keys) > 0 && match(c.Descriptors, keys)
}

// CheckRateLimits checks the rate limits of an Envoy config in front of
// extauthz against the policy and the rate limit service's config: the
// rate limit filter runs after ext_authz (so its decision's metadata is
// there) in the config's domain; every descriptor built from metadata reads
// extauthz's namespace dynamically, a member extauthz sets on that route
// (a fixed one, or one the route's rule adds); and every descriptor is one
// the service limits.
func CheckRateLimits(rep *EnvoyReport, pd *PolicyDir, rl *RateLimitConfig) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	filters := 0
	for _, l := range rep.Bootstrap.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				var hcm hcmv3.HttpConnectionManager
				if f.GetTypedConfig().UnmarshalTo(&hcm) != nil {
					continue
				}
				authz := -1
				for i, hf := range hcm.GetHttpFilters() {
					if hf.GetName() == ExtAuthzFilterName {
						authz = i
					}
					var rlc ratelimitv3.RateLimit
					if hf.GetTypedConfig().UnmarshalTo(&rlc) != nil {
						continue
					}
					filters++
					if authz < 0 {
						add("listener %s: the rate limit filter %s runs before ext_authz, so the descriptors have no decision metadata", l.GetName(), hf.GetName())
					}
					if rlc.GetDomain() != rl.Domain {
						add("listener %s: rate limit domain %q, the service's config has %q", l.GetName(), rlc.GetDomain(), rl.Domain)
					}
				}
			}
		}
	}
	if filters == 0 {
		add("no rate limit filter")
	}
	for _, r := range rep.Routes {
		rule := r.ContextExtensions["rule"]
		emitted := slices.Concat(FixedMetadata, pd.Metadata[rule])
		for i, limit := range r.Route.GetRoute().GetRateLimits() {
			where := fmt.Sprintf("route %q rate_limits[%d]", r.Route.GetName(), i)
			var keys []string
			for j, a := range limit.GetActions() {
				md := a.GetMetadata()
				if md == nil {
					add("%s.actions[%d]: only metadata actions are checked here; add a check for this one", where, j)
					continue
				}
				keys = append(keys, md.GetDescriptorKey())
				mk := md.GetMetadataKey()
				switch {
				case md.GetSource() != routev3.RateLimit_Action_MetaData_DYNAMIC:
					add("%s.actions[%d]: source must be DYNAMIC to read extauthz's decision", where, j)
				case mk.GetKey() != ExtAuthzFilterName:
					add("%s.actions[%d]: metadata_key.key %q, want extauthz's namespace %s", where, j, mk.GetKey(), ExtAuthzFilterName)
				case len(mk.GetPath()) != 1:
					add("%s.actions[%d]: metadata_key.path must name one top-level member", where, j)
				case !r.AuthzEnabled:
					add("%s.actions[%d]: ext_authz is off on this route, so it has no decision metadata", where, j)
				case !slices.Contains(emitted, mk.GetPath()[0].GetKey()):
					add("%s.actions[%d]: member %q is neither set by extauthz nor by rule %q (metadata)", where, j, mk.GetPath()[0].GetKey(), rule)
				}
			}
			if !rl.Limits(keys) {
				add("%s: descriptor %q has no limit in the rate limit service's config", where, keys)
			}
		}
	}
	return errors.Join(errs...)
}
