package check

import (
	"context"
	"fmt"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// Step is one check made while deciding a request, as `extauthz check
// --policy` prints it: what was checked, whether it held, and why.
type Step struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// trace records Steps. A nil *trace records nothing, so the serving path
// pays one nil check per step.
type trace struct {
	steps []Step
}

func (t *trace) add(check string, ok bool, format string, args ...any) {
	if t == nil {
		return
	}
	t.steps = append(t.steps, Step{Check: check, OK: ok, Detail: fmt.Sprintf(format, args...)})
}

// Explain decides req as Check does and also returns every step taken, for
// operators debugging a policy offline. It is not for the serving path.
func (s *Server) Explain(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, []Step) {
	tr := &trace{}
	resp := s.check(ctx, req, tr)
	return resp, tr.steps
}
