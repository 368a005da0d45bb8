package policy

import "sync/atomic"

// Store publishes the current Snapshot. Checks Load it once and use that
// snapshot to the end, so no Check sees a mix of two policies.
type Store struct {
	p atomic.Pointer[Snapshot]
}

// NewStore returns a Store serving snap.
func NewStore(snap *Snapshot) *Store {
	s := &Store{}
	s.p.Store(snap)
	return s
}

// Load returns the current snapshot.
func (s *Store) Load() *Snapshot { return s.p.Load() }

// Swap publishes snap and returns the one it replaces.
func (s *Store) Swap(snap *Snapshot) *Snapshot { return s.p.Swap(snap) }
