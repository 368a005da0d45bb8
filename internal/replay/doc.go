// Package replay remembers the jti of every single-use token until it expires,
// so a client assertion is accepted once. Stores sit behind the small Store
// interface: a bounded in-memory store for one replica, Redis for many.
//
// Open turns the --replay-store flag into a Store: "memory", or one of the
// Redis URLs below.
//
// # Memory
//
// Memory holds a 16-byte hash of (namespace, jti) and the expiry, in shards
// with their own locks. When full it answers ErrFull rather than evict an
// entry that has not expired; expired entries are reclaimed on insert, so
// no goroutine runs in the background.
//
// A namespace is one client, the party that mints the jtis: an issuer of
// the policy for client assertions, a DPoP key ("dpop#" and its thumbprint)
// for proofs. Each namespace may hold at most MaxEntriesPerNamespace
// entries (a tenth of the store unless set), so a client that floods fresh
// jtis is refused alone, with ErrNamespaceFull, and the others keep
// claiming. Namespaces sharing the part before a '#' form a group, bounded
// together by MaxEntriesPerGroup (half the store unless set): DPoP keys
// cost nothing to make, so a client minting a key per proof meets the
// group's bound (ErrGroupFull) and leaves the other half to the issuers.
// The total bound, MaxEntries, still caps memory; both refusals wrap
// ErrFull, and expired entries are always reclaimed before anything is
// refused.
//
// # Redis URLs
//
//	redis://[user:password@]host[:port][/db][?option=value&...]
//	rediss://[user:password@]host[:port][/db][?option=value&...]
//	unix://[user:password@]/path/to/redis.sock[?db=N]
//	redis-sentinel://[user:password@]host:port[/db]?master_name=NAME[&addr=host:port...]
//	rediss-sentinel://...
//	redis-cluster://[user:password@]host:port[?addr=host:port...]
//	rediss-cluster://...
//
// The "-sentinel" and "-cluster" suffixes choose go-redis's failover and
// cluster clients; the rest of the URL, query options included, is read by
// go-redis's redis.ParseURL, redis.ParseFailoverURL and redis.ParseClusterURL
// after the suffix is stripped. Options are go-redis option fields in snake
// case (dial_timeout=1s, pool_size=20, max_retries=1, ...), and an unknown
// option is an error. rediss verifies the server against the system roots
// (point SSL_CERT_FILE or SSL_CERT_DIR at a private CA). Further addresses of
// sentinels or cluster seed nodes are given with repeated addr options. For
// Sentinel, as in go-redis, the userinfo authenticates to the sentinels and
// the master's credentials go in the username and password options; a
// cluster URL takes no database number. The context timeout is always on,
// so RedisConfig.Timeout bounds each command, go-redis's retries included,
// and also any dial and TLS handshake the command has to wait for: across a
// slow link, min_idle_conns=N keeps connections ready.
//
// Each claim is one SET key 1 NX PX ttl, where key is the prefix (default
// "extauthz:replay:") followed by the lowercase hex SHA-256 of namespace, a
// zero byte and jti, so no byte of the token reaches Redis. Any failure to
// get an answer (but the OOM refusal below) wraps ErrUnavailable: whether
// the jti was recorded is then unknown, and the caller fails closed.
// Commands are not retried (unless the URL sets max_retries), because a
// retried SET NX whose first try was applied would refuse a token's first
// use as a replay. If Redis applied a SET whose reply was lost, the token
// is refused, never accepted twice.
//
// go-redis's own log lines are written to RedisConfig.Logger ("replay:
// go-redis", the line in detail), so they share the process's log format:
// trouble (a failed dial or sentinel query) as warnings, a change of
// topology (a new master) as info. go-redis has one logger per process, so
// the most recent Logger set receives them.
//
// Redis keeps no count per namespace (that would take a script and a
// second structure per claim): every key carries its TTL, and maxmemory
// is the only bound. At maxmemory under maxmemory-policy noeviction, Redis
// refuses the SET with OOM before running it; Claim then returns an error
// wrapping ErrFull, so a full Redis denies like a full memory store and is
// never taken for a down one that a fail-open caller would allow. Under a
// volatile-* policy, Redis evicts keys instead, and an evicted jti can be
// replayed until its token expires.
//
// Both stores accept a claim whose until is not in the future without
// recording it: such a token has already expired, and the verifier should
// have refused it before asking. A namespace containing a zero byte is an
// error, since it would make the hashed form ambiguous.
package replay
