package introspect

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the introspection metrics. A nil *metrics (no Registerer)
// records nothing, so call sites need no checks.
type metrics struct {
	requests *prometheus.CounterVec
	cache    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extauthz_introspection_requests_total",
			Help: "Introspection lookups that went past the cache, by outcome (active, inactive, or why no answer was had).",
		}, []string{"issuer", "outcome"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extauthz_introspection_cache_lookups_total",
			Help: "Introspection cache lookups, by result (hit or miss).",
		}, []string{"issuer", "result"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.cache} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("introspect: registering metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) request(issuer, outcome string) {
	if m != nil {
		m.requests.WithLabelValues(issuer, outcome).Inc()
	}
}

func (m *metrics) cacheLookup(issuer string, hit bool) {
	if m == nil {
		return
	}
	result := "miss"
	if hit {
		result = "hit"
	}
	m.cache.WithLabelValues(issuer, result).Inc()
}
