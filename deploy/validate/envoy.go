package validate

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	// The extensions our bootstraps name in typed_config: importing them
	// registers their types, so the Anys resolve. A config that uses a new
	// extension fails with "unable to resolve" until it is added here.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/health_check/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// ExtAuthzFilterName is the HTTP filter name (and dynamic metadata
// namespace) under which our configs install ext_authz.
const ExtAuthzFilterName = "envoy.filters.http.ext_authz"

// EnvoyReport is what ValidateEnvoy found in a bootstrap, for further
// checks by the caller.
type EnvoyReport struct {
	Bootstrap *bootstrapv3.Bootstrap
	// Clusters defined in static_resources.
	Clusters map[string]bool
	// ExtAuthz holds every ext_authz filter config, by its path.
	ExtAuthz map[string]*extauthzv3.ExtAuthz
	// Routes with their effective ext_authz settings.
	Routes []EnvoyRoute
	// FilterChains of the static listeners, with what they terminate.
	FilterChains []EnvoyFilterChain
}

// EnvoyFilterChain is one filter chain of a static listener: its downstream
// TLS context and the connection managers it runs.
type EnvoyFilterChain struct {
	Path string
	// TLS is the chain's DownstreamTlsContext, nil for plaintext.
	TLS  *tlsv3.DownstreamTlsContext
	HCMs []*hcmv3.HttpConnectionManager
	// ExtAuthz are the ext_authz filters of those connection managers.
	ExtAuthz []*extauthzv3.ExtAuthz
}

// EnvoyRoute is one route of an HTTP connection manager.
type EnvoyRoute struct {
	Path  string // where it is in the bootstrap, for messages
	Route *routev3.Route
	// VirtualHost and RouteConfig it belongs to (their header manipulation
	// applies to the route too).
	VirtualHost *routev3.VirtualHost
	RouteConfig *routev3.RouteConfiguration
	// AuthzEnabled says whether ext_authz runs for this route (the filter is
	// in the chain and not disabled for it).
	AuthzEnabled bool
	// ContextExtensions are the merged check_settings.context_extensions.
	ContextExtensions map[string]string
}

// ValidateEnvoy decodes an Envoy bootstrap in YAML strictly (unknown fields
// and unresolvable Any types are errors), runs the protoc-gen-validate rules
// on it and, unlike a plain ValidateAll, on every message packed in an Any
// (typed_config, typed_per_filter_config, ...), rejects deprecated fields,
// and checks that every cluster a config names is defined and every
// per-route filter config names a filter of the chain.
func ValidateEnvoy(src []byte) (*EnvoyReport, error) {
	js, err := yaml.YAMLToJSONStrict(src)
	if err != nil {
		return nil, fmt.Errorf("envoy: yaml: %w", err)
	}
	var bs bootstrapv3.Bootstrap
	if err := (protojson.UnmarshalOptions{Resolver: protoregistry.GlobalTypes}).Unmarshal(js, &bs); err != nil {
		return nil, fmt.Errorf("envoy: decode bootstrap: %w", err)
	}
	w := &envoyWalker{refs: map[string][]string{}}
	if err := bs.ValidateAll(); err != nil {
		w.errs = append(w.errs, fmt.Errorf("bootstrap: %w", err))
	}
	w.walk(bs.ProtoReflect(), "")

	rep := &EnvoyReport{Bootstrap: &bs, Clusters: map[string]bool{}, ExtAuthz: w.extAuthz}
	for _, c := range bs.GetStaticResources().GetClusters() {
		if rep.Clusters[c.GetName()] {
			w.errs = append(w.errs, fmt.Errorf("static_resources.clusters: %q defined twice", c.GetName()))
		}
		rep.Clusters[c.GetName()] = true
	}
	names := make([]string, 0, len(w.refs))
	for name := range w.refs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !rep.Clusters[name] {
			w.errs = append(w.errs, fmt.Errorf("%s: cluster %q is not defined in static_resources.clusters", w.refs[name][0], name))
		}
	}
	for _, h := range w.hcms {
		routes, errs := hcmRoutes(h.path, h.hcm)
		rep.Routes = append(rep.Routes, routes...)
		w.errs = append(w.errs, errs...)
	}
	for i, l := range bs.GetStaticResources().GetListeners() {
		lp := fmt.Sprintf("static_resources.listeners[%d]", i)
		for j, fc := range l.GetFilterChains() {
			rep.FilterChains = append(rep.FilterChains, filterChain(fmt.Sprintf("%s.filter_chains[%d]", lp, j), fc))
		}
		if fc := l.GetDefaultFilterChain(); fc != nil {
			rep.FilterChains = append(rep.FilterChains, filterChain(lp+".default_filter_chain", fc))
		}
	}
	return rep, errors.Join(w.errs...)
}

// filterChain unpacks what a filter chain terminates. Anys that do not
// unpack are skipped here: the walk reports them.
func filterChain(path string, fc *listenerv3.FilterChain) EnvoyFilterChain {
	out := EnvoyFilterChain{Path: path}
	if ts := fc.GetTransportSocket().GetTypedConfig(); ts != nil {
		var tc tlsv3.DownstreamTlsContext
		if ts.MessageIs(&tc) && ts.UnmarshalTo(&tc) == nil {
			out.TLS = &tc
		}
	}
	for _, f := range fc.GetFilters() {
		var h hcmv3.HttpConnectionManager
		if tc := f.GetTypedConfig(); tc == nil || !tc.MessageIs(&h) || tc.UnmarshalTo(&h) != nil {
			continue
		}
		out.HCMs = append(out.HCMs, &h)
		for _, hf := range h.GetHttpFilters() {
			var ea extauthzv3.ExtAuthz
			if tc := hf.GetTypedConfig(); tc != nil && tc.MessageIs(&ea) && tc.UnmarshalTo(&ea) == nil {
				out.ExtAuthz = append(out.ExtAuthz, &ea)
			}
		}
	}
	return out
}

// VerifiesClientCertificates says whether a downstream TLS context makes
// every client present a certificate that Envoy verifies, and if not, why.
func VerifiesClientCertificates(tc *tlsv3.DownstreamTlsContext) error {
	if tc == nil {
		return errors.New("plaintext: no DownstreamTlsContext")
	}
	if !tc.GetRequireClientCertificate().GetValue() {
		return errors.New("require_client_certificate is not true")
	}
	ctc := tc.GetCommonTlsContext()
	if ctc.GetValidationContextSdsSecretConfig() != nil {
		return nil // verified against what SDS serves
	}
	vc := ctc.GetValidationContext()
	if c := ctc.GetCombinedValidationContext(); c != nil {
		if c.GetValidationContextSdsSecretConfig() != nil {
			return nil // the trusted CA comes from SDS
		}
		vc = c.GetDefaultValidationContext()
	}
	if vc == nil {
		return errors.New("no validation_context: client certificates are not verified")
	}
	if vc.GetTrustChainVerification() == tlsv3.CertificateValidationContext_ACCEPT_UNTRUSTED {
		return errors.New("trust_chain_verification ACCEPT_UNTRUSTED: client certificates are not verified")
	}
	if vc.GetTrustedCa() == nil && vc.GetCustomValidatorConfig() == nil {
		return errors.New("validation_context has no trusted_ca (or custom validator)")
	}
	return nil
}

// HeaderReachesAuthz says whether ext_authz sends the request header name
// (lowercase) to the authorization service, given its allowed_headers and
// disallowed_headers.
func HeaderReachesAuthz(ea *extauthzv3.ExtAuthz, name string) (bool, error) {
	if l := ea.GetAllowedHeaders(); l != nil {
		ok, err := matchesAny(l.GetPatterns(), name)
		if err != nil || !ok {
			return false, err
		}
	}
	if l := ea.GetDisallowedHeaders(); l != nil {
		ok, err := matchesAny(l.GetPatterns(), name)
		if err != nil || ok {
			return false, err
		}
	}
	return true, nil
}

func matchesAny(ms []*matcherv3.StringMatcher, s string) (bool, error) {
	for _, m := range ms {
		ok, err := matchString(m, s)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// matchString evaluates an Envoy StringMatcher as Envoy would.
func matchString(m *matcherv3.StringMatcher, s string) (bool, error) {
	v, fold := s, m.GetIgnoreCase()
	norm := func(p string) string {
		if fold {
			return strings.ToLower(p)
		}
		return p
	}
	if fold {
		v = strings.ToLower(s)
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return v == norm(p.Exact), nil
	case *matcherv3.StringMatcher_Prefix:
		return strings.HasPrefix(v, norm(p.Prefix)), nil
	case *matcherv3.StringMatcher_Suffix:
		return strings.HasSuffix(v, norm(p.Suffix)), nil
	case *matcherv3.StringMatcher_Contains:
		return strings.Contains(v, norm(p.Contains)), nil
	case *matcherv3.StringMatcher_SafeRegex:
		// RE2 in both; Envoy matches the whole string and ignores ignore_case.
		re, err := regexp.Compile(`^(?:` + p.SafeRegex.GetRegex() + `)$`)
		if err != nil {
			return false, fmt.Errorf("safe_regex %q: %w", p.SafeRegex.GetRegex(), err)
		}
		return re.MatchString(s), nil
	default:
		return false, fmt.Errorf("string matcher %T cannot be evaluated offline", p)
	}
}

// ValidateEnvoyMessage decodes one Envoy message in JSON (such as the value
// of an Istio EnvoyFilter patch) into m as strictly as ValidateEnvoy
// decodes a bootstrap: unknown fields and unresolvable Any types are
// errors, and the protoc-gen-validate rules and the deprecation check run
// on m and on every message packed in an Any.
func ValidateEnvoyMessage(js []byte, m proto.Message) error {
	if err := (protojson.UnmarshalOptions{Resolver: protoregistry.GlobalTypes}).Unmarshal(js, m); err != nil {
		return fmt.Errorf("envoy: decode %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	w := &envoyWalker{refs: map[string][]string{}}
	if v, ok := m.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			w.errs = append(w.errs, err)
		}
	}
	w.walk(m.ProtoReflect(), "")
	return errors.Join(w.errs...)
}

type pathHCM struct {
	path string
	hcm  *hcmv3.HttpConnectionManager
}

type envoyWalker struct {
	errs     []error
	refs     map[string][]string // cluster name -> paths naming it
	extAuthz map[string]*extauthzv3.ExtAuthz
	hcms     []pathHCM
}

// validator is what protoc-gen-validate generates on every Envoy message.
type validator interface{ ValidateAll() error }

func (w *envoyWalker) walk(m protoreflect.Message, path string) {
	switch msg := m.Interface().(type) {
	case *anypb.Any:
		inner, err := msg.UnmarshalNew()
		if err != nil {
			w.errs = append(w.errs, fmt.Errorf("%s: %s: %w", path, msg.GetTypeUrl(), err))
			return
		}
		if v, ok := inner.(validator); ok {
			if err := v.ValidateAll(); err != nil {
				w.errs = append(w.errs, fmt.Errorf("%s (%s): %w", path, inner.ProtoReflect().Descriptor().FullName(), err))
			}
		}
		w.walk(inner.ProtoReflect(), path)
		return
	case *extauthzv3.ExtAuthz:
		if w.extAuthz == nil {
			w.extAuthz = map[string]*extauthzv3.ExtAuthz{}
		}
		w.extAuthz[path] = msg
	case *hcmv3.HttpConnectionManager:
		w.hcms = append(w.hcms, pathHCM{path, msg})
	case *routev3.WeightedCluster_ClusterWeight:
		w.ref(msg.GetName(), path+".name")
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := fieldPath(path, fd)
		if deprecated(fd) {
			w.errs = append(w.errs, fmt.Errorf("%s: deprecated field", p))
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				ip := fmt.Sprintf("%s[%d]", p, i)
				w.value(fd, l.Get(i), ip)
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				w.value(fd.MapValue(), mv, fmt.Sprintf("%s[%q]", p, k.String()))
				return true
			})
		default:
			w.value(fd, v, p)
		}
		return true
	})
}

// value handles one (list element, map value or singular) field value.
func (w *envoyWalker) value(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string) {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		w.walk(v.Message(), path)
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			if opts, ok := ev.Options().(*descriptorpb.EnumValueOptions); ok && opts.GetDeprecated() {
				w.errs = append(w.errs, fmt.Errorf("%s: deprecated value %s", path, ev.Name()))
			}
		}
	case protoreflect.StringKind:
		switch fd.Name() {
		case "cluster", "cluster_name", "cluster_names", "local_cluster_name":
			w.ref(v.String(), path)
		}
	}
}

func (w *envoyWalker) ref(cluster, path string) {
	if cluster != "" {
		w.refs[cluster] = append(w.refs[cluster], path)
	}
}

func fieldPath(parent string, fd protoreflect.FieldDescriptor) string {
	if parent == "" {
		return string(fd.Name())
	}
	return parent + "." + string(fd.Name())
}

func deprecated(fd protoreflect.FieldDescriptor) bool {
	opts, ok := fd.Options().(*descriptorpb.FieldOptions)
	return ok && opts.GetDeprecated()
}

// hcmRoutes lists the static routes of a connection manager with their
// effective ext_authz settings, and checks that every per-filter config
// names a filter of the chain, with the type that filter takes.
func hcmRoutes(path string, h *hcmv3.HttpConnectionManager) ([]EnvoyRoute, []error) {
	var errs []error
	filters := map[string]string{} // name -> typed_config type
	var authz *hcmv3.HttpFilter
	hf := h.GetHttpFilters()
	for i, f := range hf {
		filters[f.GetName()] = typeName(f.GetTypedConfig())
		if f.GetName() == ExtAuthzFilterName {
			authz = f
		}
		if strings.HasSuffix(typeName(f.GetTypedConfig()), ".router.v3.Router") && i != len(hf)-1 {
			errs = append(errs, fmt.Errorf("%s.http_filters[%d]: the router must be the last filter", path, i))
		}
	}
	rc := h.GetRouteConfig()
	if rc == nil {
		return nil, errs
	}
	checkPerFilter := func(p string, m map[string]*anypb.Any) {
		for name, cfg := range m {
			ft, ok := filters[name]
			if !ok {
				errs = append(errs, fmt.Errorf("%s.typed_per_filter_config[%q]: no such filter in http_filters", p, name))
				continue
			}
			if pt := typeName(cfg); pt != ft && pt != ft+"PerRoute" && !strings.HasSuffix(pt, ".config.route.v3.FilterConfig") {
				errs = append(errs, fmt.Errorf("%s.typed_per_filter_config[%q]: %s does not configure %s", p, name, pt, ft))
			}
		}
	}
	rcPath := path + ".route_config"
	checkPerFilter(rcPath, rc.GetTypedPerFilterConfig())
	var out []EnvoyRoute
	for i, vh := range rc.GetVirtualHosts() {
		vhPath := fmt.Sprintf("%s.virtual_hosts[%d]", rcPath, i)
		checkPerFilter(vhPath, vh.GetTypedPerFilterConfig())
		for j, r := range vh.GetRoutes() {
			rPath := fmt.Sprintf("%s.routes[%d]", vhPath, j)
			checkPerFilter(rPath, r.GetTypedPerFilterConfig())
			er := EnvoyRoute{Path: rPath, Route: r, VirtualHost: vh, RouteConfig: rc, ContextExtensions: map[string]string{}}
			if authz != nil {
				er.AuthzEnabled = !authz.GetDisabled()
				// Least to most specific: the most specific disabled wins,
				// check_settings merge.
				for _, m := range []map[string]*anypb.Any{rc.GetTypedPerFilterConfig(), vh.GetTypedPerFilterConfig(), r.GetTypedPerFilterConfig()} {
					a, ok := m[ExtAuthzFilterName]
					if !ok {
						continue
					}
					var pr extauthzv3.ExtAuthzPerRoute
					if err := a.UnmarshalTo(&pr); err != nil {
						continue // reported by the walk
					}
					switch o := pr.GetOverride().(type) {
					case *extauthzv3.ExtAuthzPerRoute_Disabled:
						er.AuthzEnabled = !o.Disabled
					case *extauthzv3.ExtAuthzPerRoute_CheckSettings:
						er.AuthzEnabled = true
						for k, v := range o.CheckSettings.GetContextExtensions() {
							er.ContextExtensions[k] = v
						}
					}
				}
			}
			out = append(out, er)
		}
	}
	return out, errs
}

func typeName(a *anypb.Any) string {
	if a == nil {
		return ""
	}
	return string(a.MessageName())
}

// RemovedHeaders is every request header the route, its virtual host and
// its route configuration remove (the router applies all three).
func (r EnvoyRoute) RemovedHeaders() map[string]bool {
	out := map[string]bool{}
	for _, l := range [][]string{r.Route.GetRequestHeadersToRemove(), r.VirtualHost.GetRequestHeadersToRemove(), r.RouteConfig.GetRequestHeadersToRemove()} {
		for _, h := range l {
			out[strings.ToLower(h)] = true
		}
	}
	return out
}

// AddedHeaders is every request header the route, its virtual host and its
// route configuration add.
func (r EnvoyRoute) AddedHeaders() map[string]bool {
	out := map[string]bool{}
	for _, l := range [][]*corev3.HeaderValueOption{r.Route.GetRequestHeadersToAdd(), r.VirtualHost.GetRequestHeadersToAdd(), r.RouteConfig.GetRequestHeadersToAdd()} {
		for _, h := range l {
			out[strings.ToLower(h.GetHeader().GetKey())] = true
		}
	}
	return out
}

// RemovedResponseHeaders is every response header the route, its virtual
// host and its route configuration remove.
func (r EnvoyRoute) RemovedResponseHeaders() map[string]bool {
	out := map[string]bool{}
	for _, l := range [][]string{r.Route.GetResponseHeadersToRemove(), r.VirtualHost.GetResponseHeadersToRemove(), r.RouteConfig.GetResponseHeadersToRemove()} {
		for _, h := range l {
			out[strings.ToLower(h)] = true
		}
	}
	return out
}

// Forwards says whether the route sends the request upstream (rather than
// answering it itself with a redirect or direct response).
func (r EnvoyRoute) Forwards() bool {
	return r.Route.GetRoute() != nil
}
