package main

import (
	"net/http"
	"net/http/pprof"
)

// debugPprofHandler serves Go's runtime profiles under /debug/pprof/ on the
// HTTP address, when serve's --debug-pprof is on (off by default: a profile
// reveals timing and memory, and a CPU profile costs CPU while it runs).
// `go tool pprof http://<http-addr>/debug/pprof/profile?seconds=10` profiles
// the running server under load.
func debugPprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}
