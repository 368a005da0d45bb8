package check

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/extauthz/extauthz/internal/policy"
)

// TestMetricSets: decisions that alternate on one rule (allow and deny,
// two issuers, two reasons) each count in their own series, whatever the
// slot remembered last.
func TestMetricSets(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	rule, other := &policy.Rule{Name: "api"}, &policy.Rule{Name: "other"}
	a, b := &policy.Issuer{Name: "a"}, &policy.Issuer{Name: "b"}
	ds := []*decision{
		{allow: true, rule: rule, issuer: a, reason: ReasonAllowed},
		{allow: false, rule: rule, issuer: a, reason: ReasonScope},
		{allow: true, rule: rule, issuer: b, reason: ReasonAllowed},
		{allow: true, rule: other, issuer: a, reason: ReasonAllowed},
		{allow: false, reason: ReasonNoRule},
	}
	for range 3 {
		for _, d := range ds {
			m.observe(d, time.Millisecond)
		}
	}
	for _, c := range []struct {
		decision, rule, reason string
	}{
		{"allow", "api", ReasonAllowed}, {"deny", "api", ReasonScope}, {"allow", "other", ReasonAllowed}, {"deny", "", ReasonNoRule},
	} {
		want := 3.0
		if c.rule == "api" && c.decision == "allow" {
			want = 6 // issuers a and b
		}
		if got := testutil.ToFloat64(m.decisions.WithLabelValues(c.decision, c.rule, c.reason)); got != want {
			t.Errorf("decisions{%s,%s,%s} = %v, want %v", c.decision, c.rule, c.reason, got, want)
		}
	}
	for _, c := range []struct {
		issuer, result string
		want           float64
	}{{"a", ReasonAllowed, 6}, {"a", ReasonScope, 3}, {"b", ReasonAllowed, 3}} {
		if got := testutil.ToFloat64(m.verifications.WithLabelValues(c.issuer, c.result)); got != c.want {
			t.Errorf("verifications{%s,%s} = %v, want %v", c.issuer, c.result, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.latency); n != 4 {
		t.Errorf("%d latency series, want 4", n)
	}
}
