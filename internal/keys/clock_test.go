package keys

import "github.com/extauthz/extauthz/internal/keys/fakeclock"

// fakeClock is the plane's test clock; it lives in fakeclock so that tests
// of the packages holding a plane can drive it too.
type fakeClock = fakeclock.Clock

func newFakeClock() *fakeClock { return fakeclock.New() }
