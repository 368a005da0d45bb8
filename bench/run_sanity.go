package bench

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/extauthz/extauthz/bench/mint"
)

// sanityChecks dials every server, and every server must allow the good
// requests and deny a forged token, or its numbers would mean nothing:
// extauthz and the floor stop the run, a peer is left out. extauthz must
// also refuse a replayed assertion, and pass the DPoP, introspection and
// internal-token checks of the scenarios that run.
func (s *session) sanityChecks(ctx context.Context) error {
	s.forged = BearerRequest(tamper(s.cachedTok), 0)
	for _, tg := range []*Target{s.floor, s.bare, s.ext, s.base, s.extRedis, s.opaCached, s.opaDistinct, s.heim} {
		if tg == nil {
			continue
		}
		if err := tg.Dial(s.cfg.Conns); err != nil {
			return err
		}
		s.onClose(tg.Close)
		s.targets = append(s.targets, tg)
	}
	firsts := func() [][]byte {
		out := [][]byte{s.cachedReqs[0]}
		for _, alg := range mint.Algs {
			out = append(out, s.distinct[alg][len(s.distinct[alg])-1])
		}
		return out
	}()
	dropPeer := func(tg **Target, err error) {
		s.note(fmt.Sprintf("%s failed its sanity check and was left out: %v", (*tg).Name, err))
		s.logf("%v", err)
		(*tg).Proc.Stop()
		*tg = nil
	}
	for _, tg := range []*Target{s.floor, s.ext, s.base, s.extRedis} {
		if tg == nil {
			continue
		}
		if err := s.sanity(ctx, tg, firsts); err != nil {
			return err
		}
	}
	if code, err := s.bare.Check(ctx, 0, nil); err != nil || code != 0 {
		return fmt.Errorf("bench: the bare unary method fails (code %d, err %v); log: %s", code, err, s.floor.Proc.log)
	}
	for _, tg := range []**Target{&s.opaCached, &s.opaDistinct, &s.heim} {
		if *tg == nil {
			continue
		}
		if err := s.sanity(ctx, *tg, firsts); err != nil {
			dropPeer(tg, err)
		}
	}
	// The one-shot pools lose the requests used here.
	s.memSrc, s.redisSrc = NewOneShot(s.assertMem), NewOneShot(s.assertRedis)
	for _, x := range []struct {
		tg  *Target
		src *OneShot
	}{{s.ext, s.memSrc}, {s.extRedis, s.redisSrc}} {
		if x.tg == nil || x.src.Left() == 0 {
			continue
		}
		req, _ := x.src.Next()
		if code, err := x.tg.Check(ctx, 0, req); err != nil || code != 0 {
			return fmt.Errorf("bench: %s does not allow a client assertion (code %d, err %v); log: %s", x.tg.Name, code, err, x.tg.Proc.log)
		}
		if code, err := x.tg.Check(ctx, 0, req); err != nil || code == 0 {
			return fmt.Errorf("bench: %s allows a replayed client assertion (code %d, err %v)", x.tg.Name, code, err)
		}
	}
	s.dpopSrc = NewOneShot(s.dpopReqs)
	if s.dpopSrc.Left() > 0 {
		if err := sanityDPoP(ctx, s.ext, s.dpopSrc, s.idp.ByAlg["ES256"], s.dpopClients); err != nil {
			return err
		}
	}
	if s.introspection != nil {
		s.introspectReqs = introspectRequests()
		if err := sanityIntrospect(ctx, s.ext, s.introspectReqs, s.introspection); err != nil {
			return err
		}
	}
	if len(s.txReqs) > 0 {
		if err := s.sanity(ctx, s.ext, s.txReqs); err != nil {
			return err
		}
	}
	s.logf("every server allows the good requests and denies forged or replayed ones")
	return nil
}

// sanity checks that tg allows every request of allow and, unless it is
// the floor, denies the cached token with a forged signature.
func (s *session) sanity(ctx context.Context, tg *Target, allow [][]byte) error {
	for i, req := range allow {
		code, err := tg.Check(ctx, 0, req)
		if err != nil || code != 0 {
			return fmt.Errorf("bench: %s does not allow good request %d (code %d, err %v); log: %s", tg.Name, i, code, err, tg.Proc.log)
		}
	}
	if tg == s.floor {
		return nil
	}
	if code, err := tg.Check(ctx, 0, s.forged); err != nil || code == 0 {
		return fmt.Errorf("bench: %s allows a token with a forged signature (code %d, err %v)", tg.Name, code, err)
	}
	return nil
}

// tamper flips a bit of the signature's first byte.
func tamper(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(tok[i+1:])
	sig[0] ^= 1
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}
