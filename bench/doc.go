// Package bench is `make bench`: it builds extauthz, starts it and its peers
// (OPA-Envoy, Heimdall) and a no-op ext_authz server as separate processes
// on loopback, drives each with the same Envoy-shaped CheckRequests over
// real gRPC, measures checks/s, latency and server CPU per Check, runs the
// in-process Go benchmarks, and writes docs/benchmarks.md with a chart.
package bench
