package check

import (
	"context"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/extauthz/extauthz/internal/policy"
)

// metaMember is one rule-defined dynamic_metadata member of an allow.
type metaMember struct {
	name  string
	value *structpb.Value
}

// ruleMetadata evaluates the rule's metadata members for an allowed
// request. They are computed on allows only: a deny carries the fixed
// members (client_id among them, once the credential verified), which is
// what a rate limit on failed attempts keys on, and a rule's CEL describes
// a caller the policy admitted. A member whose value cannot be emitted is
// left unset and logged at debug; the decision stands.
func (s *Server) ruleMetadata(ctx context.Context, rule *policy.Rule, vars *policy.Vars, d *decision, tr *trace) {
	if len(rule.Metadata) == 0 {
		return
	}
	d.meta = make([]metaMember, 0, len(rule.Metadata))
	for _, m := range rule.Metadata {
		v, err := m.MetadataValue(ctx, vars)
		if err != nil {
			s.cfg.Logger.Debug("check: metadata member left unset", "rule", rule.Name, "member", m.Name, "error", err)
			if tr != nil {
				tr.add("metadata "+m.Name, true, "%s: no value (%v); the member is left unset", m.Source, err)
			}
			continue
		}
		d.meta = append(d.meta, metaMember{name: m.Name, value: v})
		if tr != nil {
			js, _ := v.MarshalJSON()
			tr.add("metadata "+m.Name, true, "%s = %s", m.Source, js)
		}
	}
}
