package keys

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the plane's Prometheus metrics. A nil *metrics (no
// Registerer) records nothing, so call sites need no checks.
type metrics struct {
	fetches     *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	unknownKIDs *prometheus.CounterVec
	suppressed  *prometheus.CounterVec
	unavailable *prometheus.CounterVec
	skippedKeys *prometheus.CounterVec
	evictions   prometheus.Counter
}

// Per-issuer gauges are computed at scrape time from the cache, so an
// evicted issuer's gauges disappear with it.
var (
	descAge = prometheus.NewDesc("extauthz_keys_set_age_seconds",
		"Time since the issuer's key set was last fetched or read successfully.", []string{"issuer"}, nil)
	descLoaded = prometheus.NewDesc("extauthz_keys_loaded",
		"Usable keys in the issuer's current key set.", []string{"issuer"}, nil)
	descFailures = prometheus.NewDesc("extauthz_keys_consecutive_failures",
		"Consecutive failed fetches of the issuer's key set; 0 when the last one succeeded.", []string{"issuer"}, nil)
	descCacheSize = prometheus.NewDesc("extauthz_keys_cache_entries",
		"Remote issuers whose key sets are in the cache.", nil, nil)
)

func newMetrics(reg prometheus.Registerer, p *Plane) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extauthz_keys_fetches_total",
			Help: "Fetches of remote key sets and re-reads of key files, by outcome.",
		}, []string{"issuer", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "extauthz_keys_fetch_duration_seconds",
			Help:    "Duration of remote key set fetches, discovery included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"issuer"}),
		unknownKIDs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extauthz_keys_unknown_kid_total",
			Help: "Lookups for a kid not in the issuer's key set.",
		}, []string{"issuer"}),
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extauthz_keys_refetch_suppressed_total",
			Help: "Unknown-kid lookups denied without a refetch because of the cooldown or retry backoff.",
		}, []string{"issuer"}),
		unavailable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extauthz_keys_unavailable_total",
			Help: "Lookups answered with ErrUnavailable (the Check gets 503).",
		}, []string{"issuer"}),
		skippedKeys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extauthz_keys_skipped_keys_total",
			Help: "Keys left out of a fetched or read key set, by reason.",
		}, []string{"issuer", "reason"}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "extauthz_keys_cache_evictions_total",
			Help: "Issuer key sets evicted from the cache; they are fetched again when next used.",
		}),
	}
	for _, c := range []prometheus.Collector{
		m.fetches, m.latency, m.unknownKIDs, m.suppressed, m.unavailable, m.skippedKeys, m.evictions,
		stateCollector{p},
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("keys: registering metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) fetched(issuer, outcome string) {
	if m != nil {
		m.fetches.WithLabelValues(issuer, outcome).Inc()
	}
}

func (m *metrics) fetchLatency(issuer string, d time.Duration) {
	if m != nil {
		m.latency.WithLabelValues(issuer).Observe(d.Seconds())
	}
}

func (m *metrics) unknownKID(issuer string) {
	if m != nil {
		m.unknownKIDs.WithLabelValues(issuer).Inc()
	}
}

func (m *metrics) suppressedRefetch(issuer string) {
	if m != nil {
		m.suppressed.WithLabelValues(issuer).Inc()
	}
}

func (m *metrics) unavailableLookup(issuer string) {
	if m != nil {
		m.unavailable.WithLabelValues(issuer).Inc()
	}
}

func (m *metrics) skipped(issuer string, sk []skippedKey) {
	if m == nil {
		return
	}
	for _, k := range sk {
		m.skippedKeys.WithLabelValues(issuer, k.Reason).Inc()
	}
}

func (m *metrics) evicted() {
	if m != nil {
		m.evictions.Inc()
	}
}

// stateCollector reports the per-issuer gauges from the plane's current
// state at scrape time.
type stateCollector struct{ p *Plane }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descAge
	ch <- descLoaded
	ch <- descFailures
	ch <- descCacheSize
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.p.clock.Now()
	ch <- prometheus.MustNewConstMetric(descCacheSize, prometheus.GaugeValue, float64(c.p.cache.Len()))
	for _, s := range c.p.snapshot(now) {
		if !s.LoadedAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(descAge, prometheus.GaugeValue, now.Sub(s.LoadedAt).Seconds(), s.Issuer)
		}
		ch <- prometheus.MustNewConstMetric(descLoaded, prometheus.GaugeValue, float64(len(s.Keys)), s.Issuer)
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.GaugeValue, float64(s.ConsecutiveFailures), s.Issuer)
	}
}
