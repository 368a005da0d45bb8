// Package txtoken owns the internal token: the short-lived JWT extauthz
// mints for the upstream of an allowed request (a rule's internal_token),
// modelled on the OAuth Transaction Tokens draft
// (draft-ietf-oauth-transaction-tokens). It holds the signing keys the
// operator mounts, decides which of them signs during a rotation, builds and
// signs the claims, and serves the public keys as a JWKS and an OIDC-style
// discovery document, so that an upstream can verify the token with any
// JOSE library instead of trusting bare headers.
//
// Keys come from a PEM file or a directory of PEM files (a Kubernetes
// Secret volume) and are re-read by Refresh, which Run calls on a ticker.
// extauthz never writes keys. A P-256 key signs ES256, an Ed25519 key
// EdDSA; any other key is a load error. A key's kid is its RFC 7638 JWK
// thumbprint, so the same key keeps its kid whatever its file is named.
//
// Rotation: a key is published in the JWKS as soon as it is seen, and signs
// only once it has been published for the publish delay, so that every
// replica (each seeing the Secret at its own moment) and every upstream's
// JWKS cache has it before any token it signs reaches them; until then the
// previous key keeps signing. The signer is the newest key past its delay.
// A key removed from the mount is withdrawn at once: neither published nor
// used. At the first load the first key in file-name order counts as
// published already, so a single key signs at once; any other key found
// beside it waits the delay, since nothing says which of them the
// upstreams know.
//
// The directory's change detection hashes names and contents on every
// poll rather than comparing inodes as the key plane's file sources do
// (internal/keys/file.go): Kubernetes updates a Secret volume by swapping
// the ..data symlink, which leaves every visible name and its inode chain
// but changes what it reads, and a handful of small files are cheaper to
// hash than to reason about.
//
//	ring, err := txtoken.Open(txtoken.Config{Path: "/etc/extauthz/token-keys", PublishDelay: 2 * time.Minute})
//	go ring.Run(ctx, 10*time.Second)
//	m := &txtoken.Minter{Issuer: "https://extauthz.example.com", Keys: ring}
//	tok, claims, err := m.Mint(txtoken.Facts{Audience: "orders", Lifetime: time.Minute, ClientID: "app"}, time.Now())
package txtoken
