package bench

import (
	"encoding/gob"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/extauthz/extauthz/bench/mint"
)

// bearerSet is the bearer side of a run: the issuer's keys, the one token
// of the cached scenario, and the distinct tokens of each algorithm.
type bearerSet struct {
	Created  time.Time
	Keys     map[string][]byte // PKCS #8, by algorithm
	Cached   string
	Distinct map[string][]string

	keys *mint.Keys
}

// bearerLifetime is how long the bearer tokens are valid; a saved set is
// used for at most bearerReuse of it.
const (
	bearerLifetime = 30 * 24 * time.Hour
	bearerReuse    = 7 * 24 * time.Hour
	bearerSetVer   = 1
)

func bearerClaims(created time.Time) func(i int) map[string]any {
	return func(i int) map[string]any {
		return map[string]any{
			"iss": Issuer, "sub": fmt.Sprintf("user-%d", i), "aud": Audience,
			"client_id": ClientID, "scope": "openid read write",
			"iat": created.Unix(), "exp": created.Add(bearerLifetime).Unix(),
			"jti": fmt.Sprintf("%016x-%08x", created.UnixNano(), i),
		}
	}
}

// loadBearerSet returns the saved set of n tokens per algorithm from dir
// when there is a recent one, else signs a new set and saves it there:
// 2 × 20,000 RSA signatures take a minute of the 2 cores, which a warm
// `make bench` need not spend again. It reports whether it signed.
func loadBearerSet(dir string, n int, logf func(string, ...any)) (*bearerSet, bool, error) {
	file := filepath.Join(dir, fmt.Sprintf("bearer-v%d-%d.gob", bearerSetVer, n))
	if f, err := os.Open(file); err == nil {
		var s bearerSet
		err := gob.NewDecoder(f).Decode(&s)
		f.Close()
		if err == nil && time.Since(s.Created) < bearerReuse && complete(&s, n) {
			if s.keys, err = mint.KeysFromPKCS8("idp", s.Keys); err == nil {
				logf("using the %d bearer tokens per algorithm signed %s ago (%s)", n, time.Since(s.Created).Round(time.Minute), file)
				return &s, false, nil
			}
		}
	}
	keys, err := mint.NewKeys("idp", mint.Algs...)
	if err != nil {
		return nil, false, err
	}
	s := &bearerSet{Created: time.Now().Truncate(time.Second), Distinct: map[string][]string{}, keys: keys}
	if s.Keys, err = keys.PKCS8(); err != nil {
		return nil, false, err
	}
	claims := bearerClaims(s.Created)
	if s.Cached, err = keys.ByAlg["ES256"].Sign("at+jwt", claims(-1)); err != nil {
		return nil, false, err
	}
	for _, alg := range mint.Algs {
		t := time.Now()
		if s.Distinct[alg], err = keys.ByAlg[alg].SignMany(n, "at+jwt", claims); err != nil {
			return nil, false, err
		}
		logf("signed %d %s tokens in %s", n, alg, time.Since(t).Round(time.Millisecond))
	}
	if err := os.MkdirAll(dir, 0o700); err == nil {
		tmp := file + ".tmp"
		if f, err := os.Create(tmp); err == nil {
			err = gob.NewEncoder(f).Encode(s)
			if cerr := f.Close(); err == nil && cerr == nil {
				_ = os.Rename(tmp, file)
			} else {
				_ = os.Remove(tmp)
			}
		}
	}
	return s, true, nil
}

func complete(s *bearerSet, n int) bool {
	if s.Cached == "" || len(s.Keys) != len(mint.Algs) {
		return false
	}
	for _, alg := range mint.Algs {
		if len(s.Distinct[alg]) != n {
			return false
		}
	}
	return true
}

// toolsDir is where the bench keeps what it builds or signs between runs.
func toolsDir() string {
	if d := os.Getenv("EXTAUTHZ_TOOLS"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "extauthz-tools")
	}
	return filepath.Join(home, ".cache", "extauthz-tools")
}
