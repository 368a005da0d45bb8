package check

import (
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/token"
)

// checkScratch is the memory an allowed Check uses on its common path (the
// request view, the decision, its CEL variables, room for one header and
// the response, the token cache's answer and the token's scopes), allocated once per Check instead of once per part. Each
// part is handed out at most once; a Check that needs a second (a DPoP
// proof's decision, a second header) allocates it as before. The response
// points into the scratch, so it lives until gRPC has sent the response.
type checkScratch struct {
	req  httpRequest
	d    decision
	vars policy.Vars
	hdr  [1]header
	ok   okParts
	v    verified
	// tok is the view of a cached token (token.Compact.View).
	tok token.Token
	// scopes hold the token's scopes: RFC 9068 tokens carry a few.
	scopes [8]string

	dUsed, varsUsed, hdrUsed, okUsed, vUsed, scopesUsed, tokUsed bool
}

// metaMemos are the shared metadata (metamemo.go) for a Check's request
// view, nil for a view built some other way.
func (r *httpRequest) metaMemos() *metaMemos {
	if r.scratchOrNil() != nil {
		return &sharedMemos
	}
	return nil
}

// newDecision is a zero decision, the scratch's if it is still free.
func (r *httpRequest) newDecision() *decision {
	if s := r.scratchOrNil(); s != nil && !s.dUsed {
		s.dUsed = true
		return &s.d
	}
	return &decision{}
}

// newVars is zero CEL variables, the scratch's if they are still free.
func (r *httpRequest) newVars() *policy.Vars {
	if s := r.scratchOrNil(); s != nil && !s.varsUsed {
		s.varsUsed = true
		return &s.vars
	}
	return &policy.Vars{}
}

// headerBuf is an empty slice with room for n headers.
func (r *httpRequest) headerBuf(n int) []header {
	if s := r.scratchOrNil(); s != nil && !s.hdrUsed && n <= len(s.hdr) {
		s.hdrUsed = true
		return s.hdr[:0:n]
	}
	return make([]header, 0, n)
}

// newVerified is a zero verified, the scratch's if it is still free.
func (r *httpRequest) newVerified() *verified {
	if s := r.scratchOrNil(); s != nil && !s.vUsed {
		s.vUsed = true
		return &s.v
	}
	return &verified{}
}

// newToken is a zero token, the scratch's if it is still free.
func (r *httpRequest) newToken() *token.Token {
	if s := r.scratchOrNil(); s != nil && !s.tokUsed {
		s.tokUsed = true
		return &s.tok
	}
	return &token.Token{}
}

// scopeBuf is room for a token's scopes, nil once the scratch's is taken.
func (r *httpRequest) scopeBuf() []string {
	if s := r.scratchOrNil(); s != nil && !s.scopesUsed {
		s.scopesUsed = true
		return s.scopes[:0]
	}
	return nil
}

// newOKParts is a zero okParts, the scratch's if it is still free.
func (r *httpRequest) newOKParts() *okParts {
	if s := r.scratchOrNil(); s != nil && !s.okUsed {
		s.okUsed = true
		return &s.ok
	}
	return &okParts{}
}

func (r *httpRequest) scratchOrNil() *checkScratch {
	if r == nil {
		return nil
	}
	return r.scratch
}
