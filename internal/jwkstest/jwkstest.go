// Package jwkstest serves key documents (JWK Sets, discovery documents, PEM
// files) from a real HTTP server on loopback, and counts the requests for
// each path, so tests can assert what the key plane fetched and what it did
// not.
//
// It is a test helper: nothing but tests imports it.
package jwkstest

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
)

// Server answers each path of its documents with the document; a path
// whose document is nil answers 500 (an issuer that is down), and any other
// path 404. It stops when the test ends.
type Server struct {
	URL  string
	mu   sync.Mutex
	hits map[string]int
	log  []string
}

// New starts a Server for docs, a map from path to document.
func New(t testing.TB, docs map[string][]byte) *Server {
	t.Helper()
	s := &Server{hits: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.log = append(s.log, r.Method+" "+r.URL.String())
		s.mu.Unlock()
		doc, ok := docs[r.URL.Path]
		switch {
		case !ok:
			http.NotFound(w, r)
		case doc == nil:
			http.Error(w, "down", http.StatusInternalServerError)
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(doc)
		}
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Count is the number of requests for path, or for every path when path is
// "".
func (s *Server) Count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if path != "" {
		return s.hits[path]
	}
	n := 0
	for _, c := range s.hits {
		n += c
	}
	return n
}

// Requests lists every request so far as "METHOD URL", in order.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}
