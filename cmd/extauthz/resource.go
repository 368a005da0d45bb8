package main

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/extauthz/extauthz/internal/policy"
)

// resourceMetadataHandler serves the policy's RFC 9728 documents on the
// HTTP port: GET /.well-known/oauth-protected-resource{path}. The port is
// internal and its Host may be any name a proxy or probe uses, so a path
// that one document has is answered whatever the host; only a path shared
// by documents of several hosts needs the public Host. Anything else is a
// 404, and a rule without protected_resource never has a document.
func resourceMetadataHandler(store *policy.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		pr := store.Load().ResourceForPath(r.URL.EscapedPath(), strings.ToLower(host))
		if pr == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age="+strconv.Itoa(policy.MetadataMaxAge))
		w.Header().Set("Access-Control-Allow-Origin", "*")
		_, _ = w.Write(pr.Document)
	})
}
