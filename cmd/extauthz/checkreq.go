package main

import (
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// jwtBearer is RFC 7523's client_assertion_type.
const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// reqSpec is an HTTP request described on the command line, by check's
// flags or by a curl command line, before it becomes the CheckRequest
// Envoy would send for it.
type reqSpec struct {
	method string
	url    string
	// headers are "Name: value" lines in order; a name may repeat.
	headers stringList
	// data are body parts, already encoded, joined with "&" as curl joins
	// its -d parts.
	data stringList
	// form are k=v pairs to URL-encode into the body.
	form stringList
	// get sends data in the query string (curl -G).
	get           bool
	bearer        string
	dpop          string
	basic         string // user:password
	assertionFile string
	assertionType string
	peerCert      string
	ext           stringList
}

// register defines the request flags of check on fs.
func (s *reqSpec) register(fs *flag.FlagSet) {
	fs.StringVar(&s.method, "method", "", "HTTP `METHOD` (default GET, or POST with a body)")
	fs.StringVar(&s.url, "url", "", "the request's `URL`: scheme, host[:port], path and query (http:// when no scheme is given, as curl does)")
	fs.Var(&s.headers, "H", "header `Name: value` (repeatable; repeats are joined with \",\", as Envoy joins them)")
	fs.Var(&s.data, "data", "form `BODY`, as curl -d: sent as given, parts joined with &, @FILE reads a file; sets Content-Type application/x-www-form-urlencoded (repeatable)")
	fs.Var(&s.form, "form", "form parameter `k=v`, URL-encoded into the body (repeatable)")
	fs.StringVar(&s.bearer, "bearer", "", "access `TOKEN`, sent as Authorization: Bearer TOKEN (DPoP TOKEN with --dpop)")
	fs.StringVar(&s.dpop, "dpop", "", "DPoP `PROOF`, sent in the DPoP header")
	fs.StringVar(&s.assertionFile, "client-assertion-file", "", "`FILE` holding a client assertion (JWT): adds client_assertion_type, client_assertion and, unless the form has one, grant_type=client_credentials to the form body (RFC 7523)")
	fs.StringVar(&s.assertionType, "client-assertion-type", "", "client_assertion_type `URN` with --client-assertion-file (default "+jwtBearer+")")
	fs.StringVar(&s.peerCert, "peer-cert", "", "client certificate `FILE.pem`, sent URL-encoded as Envoy's attributes.source.certificate (include_peer_certificate)")
	fs.Var(&s.ext, "context-extension", "route context extension `k=v`, such as rule=NAME (repeatable)")
}

// given reports whether any request flag was set.
func (s *reqSpec) given() bool {
	return s.method != "" || s.url != "" || len(s.headers) > 0 || len(s.data) > 0 || len(s.form) > 0 ||
		s.bearer != "" || s.dpop != "" || s.assertionFile != "" || s.assertionType != "" || s.peerCert != "" || len(s.ext) > 0
}

// readData reads the @FILE parts of --data, as curl -d reads them.
func (s *reqSpec) readData() error {
	for i, d := range s.data {
		v, err := dataArg(d, true)
		if err != nil {
			return err
		}
		s.data[i] = v
	}
	return nil
}

// merge adds the request of a curl command line to s: lists are appended,
// and a value both give is an error.
func (s *reqSpec) merge(c *reqSpec) error {
	for _, f := range []struct {
		name     string
		dst, src *string
	}{
		{"--method and curl -X", &s.method, &c.method},
		{"--url and curl's URL", &s.url, &c.url},
		{"--bearer and curl --oauth2-bearer", &s.bearer, &c.bearer},
	} {
		if *f.src == "" {
			continue
		}
		if *f.dst != "" {
			return fmt.Errorf("%s both set; give one", f.name)
		}
		*f.dst = *f.src
	}
	s.basic = c.basic
	s.get = c.get
	s.headers = append(s.headers, c.headers...)
	s.data = append(s.data, c.data...)
	return nil
}

// peerCertEncoding percent-encodes a PEM certificate as Envoy encodes
// attributes.source.certificate (urlEncodedPemEncodedPeerCertificate).
var peerCertEncoding = strings.NewReplacer("\n", "%0A", " ", "%20", "+", "%2B", "/", "%2F", "=", "%3D")

// build makes the CheckRequest Envoy sends for the request: the
// pseudo-headers :authority, :method, :path and :scheme among the headers,
// names lower-cased, repeats joined with ",".
func (s *reqSpec) build() (*authv3.CheckRequest, error) {
	if s.url == "" {
		return nil, errors.New("the request needs a URL: give --url or a curl command line")
	}
	raw := s.url
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url %q: the scheme must be http or https", s.url)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("url %q has no host", s.url)
	}
	basic := s.basic
	if u.User != nil && basic == "" {
		pw, _ := u.User.Password()
		basic = u.User.Username() + ":" + pw
	}
	data := []string(s.data)
	for _, kv := range s.form {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--form %q: want k=v", kv)
		}
		data = append(data, url.QueryEscape(k)+"="+url.QueryEscape(v))
	}
	if s.assertionType != "" && s.assertionFile == "" {
		return nil, errors.New("--client-assertion-type needs --client-assertion-file")
	}
	if s.assertionFile != "" {
		b, err := os.ReadFile(s.assertionFile)
		if err != nil {
			return nil, fmt.Errorf("--client-assertion-file: %w", err)
		}
		assertion := strings.TrimSpace(string(b))
		if assertion == "" {
			return nil, fmt.Errorf("--client-assertion-file %s is empty", s.assertionFile)
		}
		if !formHas(data, "grant_type") {
			data = append(data, "grant_type=client_credentials")
		}
		typ := s.assertionType
		if typ == "" {
			typ = jwtBearer
		}
		data = append(data, "client_assertion_type="+url.QueryEscape(typ), "client_assertion="+url.QueryEscape(assertion))
	}

	path, query := u.EscapedPath(), u.RawQuery
	if path == "" {
		path = "/"
	}
	body := strings.Join(data, "&")
	if s.get && body != "" {
		if query != "" {
			query += "&"
		}
		query += body
		body = ""
	}
	if query != "" || u.ForceQuery {
		path += "?" + query
	}
	method := s.method
	switch {
	case method != "":
	case s.get || body == "":
		method = "GET"
	default:
		method = "POST"
	}

	authority := u.Host
	var names []string
	values := map[string]string{}
	add := func(name, value string) {
		if old, ok := values[name]; ok {
			values[name] = old + "," + value
			return
		}
		names = append(names, name)
		values[name] = value
	}
	for _, line := range s.headers {
		name, value, err := headerLine(line)
		if err != nil {
			return nil, err
		}
		if name == "host" {
			// HTTP/1.1's Host is HTTP/2's :authority; Envoy reports it so.
			authority = value
			continue
		}
		add(name, value)
	}
	if basic != "" {
		add("authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(basic)))
	}
	if s.bearer != "" {
		scheme := "Bearer "
		if s.dpop != "" {
			scheme = "DPoP "
		}
		add("authorization", scheme+s.bearer)
	}
	if s.dpop != "" {
		add("dpop", s.dpop)
	}
	if body != "" {
		if _, ok := values["content-type"]; !ok {
			add("content-type", "application/x-www-form-urlencoded")
		}
		if _, ok := values["content-length"]; !ok {
			add("content-length", strconv.Itoa(len(body)))
		}
	}
	headers := map[string]string{
		":authority": authority, ":method": method, ":path": path, ":scheme": u.Scheme,
	}
	for _, n := range names {
		headers[n] = values[n]
	}
	h := &authv3.AttributeContext_HttpRequest{
		Method: method, Host: authority, Path: path, Scheme: u.Scheme,
		Headers: headers, Body: body,
	}
	if body != "" {
		h.Size = int64(len(body))
	}
	attrs := &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: h}}
	for _, kv := range s.ext {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--context-extension %q: want k=v", kv)
		}
		if attrs.ContextExtensions == nil {
			attrs.ContextExtensions = map[string]string{}
		}
		attrs.ContextExtensions[k] = v
	}
	if s.peerCert != "" {
		b, err := os.ReadFile(s.peerCert)
		if err != nil {
			return nil, fmt.Errorf("--peer-cert: %w", err)
		}
		if blk, _ := pem.Decode(b); blk == nil || blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("--peer-cert %s: not a PEM certificate", s.peerCert)
		}
		attrs.Source = &authv3.AttributeContext_Peer{Certificate: peerCertEncoding.Replace(string(b))}
	}
	return &authv3.CheckRequest{Attributes: attrs}, nil
}

// headerLine reads a -H argument: "Name: value", or curl's "Name;" for an
// empty value.
func headerLine(line string) (name, value string, err error) {
	name, value, ok := strings.Cut(line, ":")
	if !ok {
		if n, found := strings.CutSuffix(line, ";"); found {
			name, ok = n, true
		}
	}
	name = strings.ToLower(strings.TrimSpace(name))
	if !ok || !isToken(name) {
		return "", "", fmt.Errorf("header %q: want \"Name: value\" (pseudo-headers come from the URL and method)", line)
	}
	value = strings.TrimSpace(value)
	if strings.ContainsAny(value, "\r\n\x00") {
		return "", "", fmt.Errorf("header %q: a value cannot hold CR, LF or NUL", name)
	}
	return name, value, nil
}

// isToken checks RFC 9110's token, the grammar of a header name.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return s != ""
}

// formHas reports whether the encoded form parts name the parameter.
func formHas(parts []string, name string) bool {
	for _, p := range parts {
		for _, kv := range strings.Split(p, "&") {
			if k, _, _ := strings.Cut(kv, "="); k == name {
				return true
			}
		}
	}
	return false
}

// curlOptions are the curl options `check` understands, by long name;
// short names map onto them.
var (
	curlWithArg = map[string]bool{
		"request": true, "header": true, "data": true, "data-ascii": true, "data-raw": true, "data-binary": true,
		"data-urlencode": true, "user": true, "url": true, "user-agent": true, "oauth2-bearer": true, "cookie": true,
	}
	curlShort = map[byte]string{'X': "request", 'H': "header", 'd': "data", 'u': "user", 'A': "user-agent", 'b': "cookie", 'G': "get",
		's': "silent", 'S': "show-error", 'v': "verbose", 'i': "include", 'k': "insecure", 'L': "location", 'f': "fail"}
	// curlIgnored change what curl does with the answer, or how it connects,
	// not the request Envoy sees (--compressed adds only Accept-Encoding).
	curlIgnored = map[string]bool{"silent": true, "show-error": true, "verbose": true, "include": true, "insecure": true,
		"location": true, "fail": true, "compressed": true}
)

// curlSupported is what a refusal says; checkUsage says the same.
const curlSupported = "-X/--request, -H/--header, -d/--data, --data-raw, --data-binary, --data-urlencode, -u/--user (as Basic), " +
	"-G/--get, -A/--user-agent, -b/--cookie NAME=VALUE, --oauth2-bearer, --url and a bare URL " +
	"(-s, -S, -v, -i, -k, -L, -f and --compressed are ignored)"

// parseCurl reads a curl command line (the arguments after "curl") into a
// reqSpec, as curl would send the request.
func parseCurl(args []string) (*reqSpec, error) {
	s := &reqSpec{}
	urlArg := func(u string) error {
		if s.url != "" {
			return fmt.Errorf("curl: more than one URL (%q and %q); check asks about one request", s.url, u)
		}
		s.url = u
		return nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		var opts []string // long names
		value := ""
		hasValue := false
		switch {
		case a == "--":
			for _, u := range args[i+1:] {
				if err := urlArg(u); err != nil {
					return nil, err
				}
			}
			i = len(args)
			continue
		case strings.HasPrefix(a, "--"):
			opts = []string{a[2:]}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			// A cluster of short options (-sS, -XPOST, -HName: v).
			for j := 1; j < len(a); j++ {
				name, ok := curlShort[a[j]]
				if !ok {
					return nil, fmt.Errorf("curl option -%c (in %q) is not supported; check supports %s", a[j], a, curlSupported)
				}
				opts = append(opts, name)
				if curlWithArg[name] && j+1 < len(a) {
					value, hasValue = a[j+1:], true
					break
				}
			}
		default:
			if err := urlArg(a); err != nil {
				return nil, err
			}
			continue
		}
		for _, name := range opts {
			if !curlWithArg[name] {
				switch {
				case name == "get":
					s.get = true
				case curlIgnored[name]:
				default:
					return nil, fmt.Errorf("curl option --%s is not supported; check supports %s", name, curlSupported)
				}
				continue
			}
			if !hasValue {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("curl option %s needs a value", a)
				}
				i++
				value = args[i]
			}
			if err := s.curlOption(name, value); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// curlOption applies one curl option that takes a value.
func (s *reqSpec) curlOption(name, v string) error {
	switch name {
	case "request":
		s.method = v
	case "header":
		s.headers = append(s.headers, v)
	case "user-agent":
		s.headers = append(s.headers, "User-Agent: "+v)
	case "cookie":
		if !strings.Contains(v, "=") {
			return fmt.Errorf("curl -b %q reads a cookie file; give the cookies as NAME=VALUE", v)
		}
		s.headers = append(s.headers, "Cookie: "+v)
	case "url":
		if s.url != "" {
			return fmt.Errorf("curl: more than one URL (%q and %q); check asks about one request", s.url, v)
		}
		s.url = v
	case "user":
		if !strings.Contains(v, ":") {
			return fmt.Errorf("curl -u %q: give user:password (curl would prompt for the password)", v)
		}
		s.basic = v
	case "oauth2-bearer":
		s.bearer = v
	case "data", "data-ascii":
		d, err := dataArg(v, true)
		if err != nil {
			return err
		}
		s.data = append(s.data, d)
	case "data-binary":
		d, err := dataArg(v, false)
		if err != nil {
			return err
		}
		s.data = append(s.data, d)
	case "data-raw":
		s.data = append(s.data, v)
	case "data-urlencode":
		d, err := dataURLEncode(v)
		if err != nil {
			return err
		}
		s.data = append(s.data, d)
	}
	return nil
}

// dataArg is curl's -d: @FILE reads the file (strip drops its CR and LF,
// as -d does and --data-binary does not); anything else is sent as given.
func dataArg(v string, strip bool) (string, error) {
	name, ok := strings.CutPrefix(v, "@")
	if !ok {
		return v, nil
	}
	b, err := readDataFile(name)
	if err != nil {
		return "", err
	}
	if strip {
		b = strings.NewReplacer("\r", "", "\n", "").Replace(b)
	}
	return b, nil
}

func readDataFile(name string) (string, error) {
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(filepath.Clean(name))
	}
	if err != nil {
		return "", fmt.Errorf("data: %w", err)
	}
	return string(b), nil
}

// dataURLEncode is curl's --data-urlencode: content, =content,
// name=content, @file or name@file, the content (or the file) URL-encoded
// as curl encodes it (space as %20).
func dataURLEncode(v string) (string, error) {
	esc := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
	i := strings.IndexAny(v, "=@")
	switch {
	case i < 0:
		return esc(v), nil
	case v[i] == '=':
		if i == 0 {
			return esc(v[1:]), nil
		}
		return v[:i] + "=" + esc(v[i+1:]), nil
	}
	content, err := readDataFile(v[i+1:])
	if err != nil {
		return "", err
	}
	if i == 0 {
		return esc(content), nil
	}
	return v[:i] + "=" + esc(content), nil
}
