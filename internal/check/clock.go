package check

import (
	"time"

	"github.com/extauthz/extauthz/internal/policy"
)

// stepUpNow is the instant a step-up check compares auth_time with; the
// clock is read only for a rule that has one (a clock read is a tenth of a
// cached Check on some machines).
func (s *Server) stepUpNow(su *policy.StepUp) time.Time {
	if su == nil {
		return time.Time{}
	}
	return s.cfg.Now()
}

// checkNow is the instant a Check validates credentials at: its start when
// the clock is the system's, which saves a clock read per Check, else the
// injected clock.
func (s *Server) checkNow(r *httpRequest) time.Time {
	if s.systemClock && !r.start.IsZero() {
		return r.start
	}
	return s.cfg.Now()
}
