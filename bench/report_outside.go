package bench

// writeOutside tells a reader how to check the end-to-end figures from
// outside (outside.go). It has no figure of the run, so docs/benchmarks.md
// can carry it before the next `make bench`.
func (r *report) writeOutside(w func(string, ...any)) {
	w("## Reproduce from outside\n\n")
	w("`make bench` drives the servers from its own process. To check the figures as a new user would, with every part a separate process, run from the repository root:\n\n")
	w("    go run ./bench/cmd/extauthz-bench outside\n\n")
	w("It builds `./cmd/extauthz` and starts, on this machine, the no-op floor (`extauthz-bench noop`), extauthz on `bench/extauthz/policy.yaml` with its JWK Sets inline (a token route and an API route, one header each), and for each run a load generator of its own (`extauthz-bench load`) on other cores than the servers' (the pinning above, `-pin=false` to share them), sending Envoy-shaped CheckRequests with seven headers over gRPC on 127.0.0.1. ")
	w("It runs 3 interleaved rounds (`-rounds`) of 3 s (`-duration`) of the floor, one cached ES256 bearer token and distinct ES256 tokens, reading each server's CPU from `/proc/<pid>/stat`, and measures a raw ES256 verify in process; in about a minute it prints the medians of each scenario's server CPU per Check and checks/s, the raw verify, and the two ratios of the targets above, each the median of the rounds':\n\n")
	w("    cached ÷ floor: <floor's µs ÷ extauthz's> on server CPU per Check (…), <extauthz's checks/s ÷ the floor's> on checks/s (target ≥ 0.92)\n")
	w("    distinct ES256 ÷ predicted: <checks/s ÷ the server cores' rate at the floor's µs + one raw verify per Check> on checks/s (…), <(floor + raw verify) ÷ extauthz's µs> on server CPU per Check (target ≥ 0.90)\n")
	w("    cached ÷ floor, the two at the same time: <the floor's µs ÷ extauthz's, both loaded at once> on server CPU per Check (<range> over the rounds)\n\n")
	w("The last line is the same-time ratio of “extauthz against the floor”: each round ends with the floor and extauthz on the cached token loaded together, each by its own load generator with half the requests in flight.\n\n")
	w("## Compare two builds\n\n")
	w("On a shared machine a solo round can differ from the next by half, which hides a change of a few percent. `extauthz-bench ab` runs two servers at the same time, on the same server cores, each with its own load generator, so whatever else the machine does falls on both; their ratio stays within a few percent from round to round, and its median within about 1%% (two copies of one build give 1.00):\n\n")
	w("    go build -o /tmp/old ./cmd/extauthz   # at the old commit, then at the new:\n")
	w("    go build -o /tmp/new ./cmd/extauthz\n")
	w("    go run ./bench/cmd/extauthz-bench ab -a /tmp/old -b /tmp/new\n\n")
	w("It prints, per round, each side's server CPU per Check for one cached ES256 token and for distinct ES256 tokens, and then B's ÷ A's, the median of the rounds. `-a floor` puts the no-op server on a side. Two servers sharing the cores and caches cost more than one alone, so these figures compare builds; the figures above are the report's.\n\n")
}
