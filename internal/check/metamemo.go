package check

import (
	"sync/atomic"
	"unsafe"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/extauthz/extauthz/internal/policy"
)

// metaMemos remember the last dynamic_metadata Struct of allows, a slot per
// rule (by its address), so that the Checks of one caller on one rule
// share a Struct instead of building a map of seven members each: two
// allocations and a sixth of a cached Check. Only allows without rule
// metadata members are shared (members are CEL over the request), and only
// when every input of the Struct is equal; responses only ever read their
// metadata, as they read the interned values in it. The slots are few and
// fixed, so a policy reload leaves at most that many old rules reachable.
// A memo also keeps its Struct's wire form, so the codec copies those bytes
// instead of encoding a map of seven members on every allow; for that the
// codec must find it, so the memos are one table for the process
// (sharedMemos), not one per Server: a memo matches only its own rule.
type metaMemos [64]atomic.Pointer[metaMemo]

// sharedMemos are the memos of every Server in the process.
var sharedMemos metaMemos

// metaMemo is one shared Struct (in parts) and what it was built from.
type metaMemo struct {
	rule                              *policy.Rule
	issuer                            *policy.Issuer
	reason, clientID, spiffeID, audit string
	parts                             metaParts
	// wire is parts.st encoded (appendStruct), nil if it cannot be.
	wire []byte
}

func (m *metaMemos) slot(d *decision) *atomic.Pointer[metaMemo] {
	if m == nil || !d.allow || d.rule == nil || len(d.meta) != 0 {
		return nil
	}
	return &m[ruleSlot(d.rule, len(m))]
}

// ruleSlot spreads rules over n slots by address: rules are at least
// their size apart in memory.
func ruleSlot(r *policy.Rule, n int) int {
	return int(uintptr(unsafe.Pointer(r)) / unsafe.Sizeof(policy.Rule{}) % uintptr(n))
}

func (e *metaMemo) matches(d *decision) bool {
	return e.rule == d.rule && e.issuer == d.issuer && e.reason == d.reason &&
		e.clientID == d.clientID && e.spiffeID == d.spiffeID && e.audit == d.audit
}

// metadata is d.metadata: the remembered Struct when the last allow of
// d's rule had the same inputs, else a new one (in p when it cannot be
// shared) that the next may share. A shared Struct holds nothing of the
// request, so remembering it keeps no request's bytes alive.
func (m *metaMemos) metadata(d *decision, p *metaParts) *structpb.Struct {
	s := m.slot(d)
	if s == nil {
		return d.metadata(p)
	}
	if e := s.Load(); e != nil && e.matches(d) {
		return &e.parts.st
	}
	e := &metaMemo{rule: d.rule, issuer: d.issuer, reason: d.reason, clientID: d.clientID, spiffeID: d.spiffeID, audit: d.audit}
	st := d.metadata(&e.parts)
	if w, ok := appendStruct(nil, st); ok {
		e.wire = w
	}
	s.Store(e)
	return st
}

// wireOf is the wire form of st when st is a memo's Struct, else nil.
// Scanning every slot costs less than encoding the smallest Struct.
func (m *metaMemos) wireOf(st *structpb.Struct) []byte {
	if m == nil || st == nil {
		return nil
	}
	for i := range m {
		if e := m[i].Load(); e != nil && &e.parts.st == st {
			return e.wire
		}
	}
	return nil
}
