package check

import (
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	decision, rule := "deny", ""
	if d.allow {
		decision = "allow"
	}
	if d.rule != nil {
		rule = d.rule.Name
	}
	m.decisions.WithLabelValues(decision, rule, d.reason).Inc()
	m.latency.WithLabelValues(decision, rule).Observe(elapsed.Seconds())
	if d.issuer != nil {
		m.verifications.WithLabelValues(d.issuer.Name, d.reason).Inc()
	}
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
