// Package policy owns the policy files: it loads YAML strictly onto the
// extauthz.policy.v1 schema, validates every field with its path, compiles
// CEL expressions, resolves issuer references and key sources, and publishes
// the result as an immutable Snapshot that Checks read through a Store.
//
//	snap, err := policy.Load([]string{"policy.yaml"}, policy.Options{Keys: plane})
//	store := policy.NewStore(snap)
//	rule, err := store.Load().Select(ruleName, &req)
//
// policy knows nothing of gRPC or Envoy.
package policy
