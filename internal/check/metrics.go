package check

import (
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/replay"
)

// Metrics are the Check server's Prometheus metrics. A nil *Metrics records
// nothing, so tests and tools need not register any.
type Metrics struct {
	decisions     *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	verifications *prometheus.CounterVec
	failOpen      prometheus.Counter
	replayOps     *prometheus.CounterVec
	replayFulls   *prometheus.CounterVec
	// sets remember, a slot per rule, the series the last Check of the
	// rule counted in: finding a series by its label values hashes them
	// all, three times per Check.
	sets [64]atomic.Pointer[metricSet]
}

// metricSet is the series of one decision, rule, issuer and reason.
type metricSet struct {
	allow         bool
	rule          *policy.Rule
	issuer        *policy.Issuer
	reason        string
	decisions     prometheus.Counter
	latency       prometheus.Observer
	verifications prometheus.Counter // nil without an issuer
}

// NewMetrics registers the Check metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extauthz_decisions_total",
			Help: "Check decisions by decision, rule and reason code.",
		}, []string{"decision", "rule", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "extauthz_check_duration_seconds",
			Help:    "Time to decide a Check, by decision and rule.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
		}, []string{"decision", "rule"}),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extauthz_token_verifications_total",
			Help: "Token verifications by issuer and result (a reason code, or allowed).",
		}, []string{"issuer", "result"}),
		failOpen: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "extauthz_replay_fail_open_total",
			Help: "Client assertions allowed without replay protection because the replay store was unavailable (--replay-fail-open).",
		}),
	}
	m.replayOps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "extauthz_replay_operations_total",
		Help: "Replay store claims by result: ok, replayed, full, or error (the store could not be asked).",
	}, []string{"result"})
	m.replayFulls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "extauthz_replay_full_total",
		Help: "Replay store claims refused for want of room, by namespace (the issuer's name, or dpop# for every DPoP key) and the bound reached: namespace (that client's own share), group (all DPoP keys together) or total (the whole store).",
	}, []string{"namespace", "bound"})
	reg.MustRegister(m.decisions, m.latency, m.verifications, m.failOpen, m.replayOps, m.replayFulls)
	return m
}

func (m *Metrics) observe(d *decision, elapsed time.Duration) {
	if m == nil {
		return
	}
	set := m.set(d)
	set.decisions.Inc()
	set.latency.Observe(elapsed.Seconds())
	if set.verifications != nil {
		set.verifications.Inc()
	}
}

// set is the series d is counted in: the remembered ones when the last
// Check of d's rule had the same labels, else found by label values.
func (m *Metrics) set(d *decision) *metricSet {
	var slot *atomic.Pointer[metricSet]
	if d.rule != nil {
		slot = &m.sets[ruleSlot(d.rule, len(m.sets))]
		if e := slot.Load(); e != nil && e.allow == d.allow && e.rule == d.rule && e.issuer == d.issuer && e.reason == d.reason {
			return e
		}
	}
	decision, rule := "deny", ""
	if d.allow {
		decision = "allow"
	}
	if d.rule != nil {
		rule = d.rule.Name
	}
	e := &metricSet{
		allow: d.allow, rule: d.rule, issuer: d.issuer, reason: d.reason,
		decisions: m.decisions.WithLabelValues(decision, rule, d.reason),
		latency:   m.latency.WithLabelValues(decision, rule),
	}
	if d.issuer != nil {
		e.verifications = m.verifications.WithLabelValues(d.issuer.Name, d.reason)
	}
	if slot != nil {
		slot.Store(e)
	}
	return e
}

func (m *Metrics) replayClaim(result string) {
	if m == nil {
		return
	}
	m.replayOps.WithLabelValues(result).Inc()
}

// replayFull counts a claim in namespace that the store refused with err,
// an error wrapping replay.ErrFull, by the bound it reached.
func (m *Metrics) replayFull(namespace string, err error) {
	if m == nil {
		return
	}
	m.replayOps.WithLabelValues("full").Inc()
	bound := "total"
	switch {
	case errors.Is(err, replay.ErrNamespaceFull):
		bound = "namespace"
	case errors.Is(err, replay.ErrGroupFull):
		bound = "group"
	}
	m.replayFulls.WithLabelValues(replayNamespaceLabel(namespace), bound).Inc()
}

// replayNamespaceLabel keeps the label set as small as the policy: an
// issuer's name is the operator's, but a DPoP namespace holds a key's
// thumbprint, which any client mints at will, so every DPoP key shares
// one label.
func replayNamespaceLabel(namespace string) string {
	if strings.HasPrefix(namespace, proofNamespace) {
		return proofNamespace
	}
	return namespace
}

func (m *Metrics) replayFailOpen() {
	if m == nil {
		return
	}
	m.failOpen.Inc()
}
