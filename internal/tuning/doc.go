// Package tuning owns how extauthz's servers use the Go runtime: the
// collector's pacing and the goroutines that run Checks. Both serve and
// the bench's no-op floor server use it, so a saving it makes counts in
// the floor too and is not credited to extauthz.
//
// The collector: a cached Check allocates a few kilobytes, most of them
// gRPC's, and keeps none of them, while what stays live (policy, key sets,
// caches) is a few megabytes. With Go's default GOGC of 100 the collector
// runs each time the process has allocated as much again as is live:
// hundreds of times a second under load, for a third of a cached Check's
// CPU. With a headroom (StartGCHeadroom), GOGC is raised after each
// collection to whatever lets the live heap grow by that many bytes before
// the next, and never set below 100, so a large live heap (a full token
// cache) is collected as often as by default. A memory limit (GOMEMLIMIT,
// or the one serve sets from the container's) still applies: near it the
// collector runs sooner, whatever GOGC says.
//
// The goroutines: gRPC starts a goroutine per call unless it has workers
// (StreamWorkers), and each new goroutine grows its stack, copying,
// several times during a Check.
package tuning
