// Package jws makes compact JWS signatures with the standard library. It is
// the one signer of extauthz: `extauthz test` signs the tokens of policy test
// files with it, the benchmark mints its tokens with it, and the test
// fixtures (test/jose's Go side, the adversarial suite) forge theirs with it.
// The hash and key type of each algorithm come from the keys package's
// table, so what extauthz signs and what it verifies cannot disagree.
//
// It signs what it is given, a header that lies about its alg included: the
// tests need exactly that. Verification is package token's.
package jws
