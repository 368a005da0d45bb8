package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/offline"
)

// checkUsage is `extauthz check --help`: the forms of a request, each
// with an example, the outputs and the exit codes; the flags follow.
const checkUsage = `usage: extauthz check (--policy PATH... | --addr ADDR [--tls...]) REQUEST [--explain] [-o text|json]

Decides one request, offline against policy files (--policy, repeatable) or
by asking a running server (--addr host:port or unix:///path), and prints
the answer. REQUEST is one of:

  flags         extauthz check --policy p.yaml --url https://api.example.com/reports/q1 --bearer "$TOKEN"
  an assertion  extauthz check --policy p.yaml --url https://login.example.com/oauth/v2/oauth-token --client-assertion-file assertion.jwt
  a curl line   extauthz check --policy p.yaml -- curl -X POST https://api.example.com/reports -H "Authorization: Bearer $TOKEN" -d 'q=1'
  a file        extauthz check --addr 127.0.0.1:9001 --request req.json

The request is built as Envoy sends it: :authority, :method, :path and
:scheme among the headers, names lower-cased, repeated headers joined with
",". Of curl's options check reads -X/--request, -H/--header, -d/--data,
--data-raw, --data-binary, --data-urlencode, -u/--user (as Basic), -G/--get,
-A/--user-agent, -b/--cookie NAME=VALUE, --oauth2-bearer, --url and a bare
URL; it ignores -s, -S, -v, -i, -k, -L, -f and --compressed, and refuses
the rest. --request is a CheckRequest as protojson (- for stdin).

--now RFC3339 pins the clock of an offline decision (--policy only): token
lifetimes, key files and DPoP proofs are judged at that time, so a token
saved from an incident can be asked about as it was then:

  extauthz check --policy p.yaml --now 2026-03-01T09:30:00Z --url https://api.example.com/reports/q1 --bearer "$TOKEN"

--addr speaks plaintext unless a TLS flag is given. For a TLS listener
(serve --grpc-tls-cert): --tls when the system's roots verify its
certificate, --tls-ca FILE for a private CA; for mTLS (serve
--grpc-client-ca) add --tls-cert FILE --tls-key FILE; --tls-server-name
NAME when the certificate does not hold the host of --addr. The server's
certificate is always verified:

  extauthz check --addr extauthz.extauthz.svc.cluster.local:9001 --tls-ca ca.crt --tls-cert envoy.crt --tls-key envoy.key --request req.json

Output:
  (default)        decision, rule, reason, the other metadata, the headers set and removed
                   (grouped by header), and the response headers and body of a deny
  --explain        every step of the decision first (with --policy), with the values
                   a failed require read
  -o json          the CheckResponse as protojson; with --explain {"steps": [...], "response": {...}}
  --print-request  the CheckRequest built, as protojson, and nothing else; save it for
                   --request:
                   extauthz check --print-request --url https://api.example.com/reports/q1 --bearer "$TOKEN" > req.json

Exit status: 0 allow, 1 deny, 2 usage error or a request that cannot be built,
3 the policy did not load or the server could not be asked.

Flags (each may also be set as EXTAUTHZ_<FLAG>, upper case, - as _):
`

// checkCmd decides one request, from a running server (--addr) or offline
// from policy files (--policy). The request is built from flags or a curl
// command line, or read as protojson (--request). Exit 0 on allow, 1 on
// deny, 2 on a usage error, 3 when no answer could be had.
func checkCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", stderr)
	addr := fs.String("addr", "", "address `ADDR` of a running extauthz: host:port or unix:///path")
	var policies stringList
	fs.Var(&policies, "policy", "decide offline against these policy files or directories (`PATH`, repeatable); remote keys are fetched, the clock is the real one unless --now")
	nowFlag := fs.String("now", "", "with --policy, decide at this `RFC3339` time instead of the real clock (exp, nbf, iat, key files, DPoP proofs)")
	reqFile := fs.String("request", "", "`FILE` holding a CheckRequest as protojson (- for stdin)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer (and, offline, for remote keys)")
	explainFlag := fs.Bool("explain", false, "print every step of the decision (with --policy)")
	output := fs.String("o", "text", "output: `text` (a summary) or json (the CheckResponse as protojson)")
	printReq := fs.Bool("print-request", false, "print the CheckRequest built, as protojson, and exit")
	var spec reqSpec
	spec.register(fs)
	var dial dialTLS
	dial.flags(fs)
	var tok tokenConfig
	tok.offlineFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, checkUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return flagExit(err)
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "extauthz check: "+format+"\n(extauthz check --help lists the forms)\n", a...)
		return 2
	}

	// A curl command line follows "--", or starts with the word curl.
	rest := fs.Args()
	dashdash := len(rest) < len(args) && args[len(args)-len(rest)-1] == "--"
	var curlArgs []string
	if len(rest) > 0 {
		switch {
		case filepath.Base(rest[0]) == "curl":
			curlArgs = rest[1:]
		case dashdash:
			curlArgs = rest
		default:
			return usage("unexpected argument %q; a curl command line goes after --", rest[0])
		}
	}
	built := spec.given() || len(rest) > 0
	var req *authv3.CheckRequest
	switch {
	case *reqFile != "" && built:
		return usage("give --request or a request from flags or a curl command line, not both")
	case *reqFile != "":
		r, err := readCheckRequest(*reqFile)
		if err != nil {
			return usage("%v", err)
		}
		req = r
	case built:
		if err := spec.readData(); err != nil {
			return usage("%v", err)
		}
		if len(rest) > 0 {
			c, err := parseCurl(curlArgs)
			if err == nil {
				err = spec.merge(c)
			}
			if err != nil {
				return usage("%v", err)
			}
		}
		r, err := spec.build()
		if err != nil {
			return usage("%v", err)
		}
		req = r
	default:
		return usage("no request: give --url and other request flags, a curl command line after --, or --request FILE")
	}
	if *printReq {
		b, err := protoJSON(req)
		if err != nil {
			fmt.Fprintln(stderr, "extauthz check:", err)
			return 3
		}
		stdout.Write(b)
		return 0
	}
	switch {
	case (*addr == "") == (len(policies) == 0):
		return usage("give --policy PATH (offline) or --addr ADDR (a running server), one of them")
	case *output != "text" && *output != "json":
		return usage("-o: want text or json, got %q", *output)
	case *explainFlag && *addr != "":
		return usage("--explain needs --policy: the steps are traced in-process")
	case *nowFlag != "" && *addr != "":
		return usage("--now needs --policy: a running server decides on its own clock")
	case (tok.keys != "" || tok.issuer != "") && *addr != "":
		return usage("--token-keys and --token-issuer need --policy: a running server signs with its own keys")
	}
	var now func() time.Time
	if *nowFlag != "" {
		at, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			return usage("--now: want an RFC 3339 time such as 2026-03-01T09:30:00Z: %v", err)
		}
		now = func() time.Time { return at }
	}
	if err := dial.check(*addr); err != nil {
		return usage("%v", err)
	}
	creds, err := dial.credentials()
	if err != nil {
		return usage("%v", err)
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var resp *authv3.CheckResponse
	var steps []check.Step
	if len(policies) > 0 {
		minter, err := tok.offlineMinter(now)
		if err != nil {
			fmt.Fprintln(stderr, "extauthz check:", err)
			return 3
		}
		srv, err := offline.New(ctx, offline.Config{Policies: policies, Fetch: true, Now: now, Check: check.Config{Tokens: minter}})
		if err != nil {
			fmt.Fprintln(stderr, "extauthz check:", err)
			return 3
		}
		defer srv.Close()
		if *explainFlag {
			resp, steps = srv.Explain(ctx, req)
		} else if resp, err = srv.Check(ctx, req); err != nil {
			fmt.Fprintln(stderr, "extauthz check:", err)
			return 3
		}
	} else {
		if resp, err = remoteCheck(ctx, *addr, creds, req); err != nil {
			fmt.Fprintln(stderr, "extauthz check:", dial.explain(err))
			return 3
		}
	}
	if err := writeAnswer(stdout, resp, steps, *explainFlag, *output == "json"); err != nil {
		fmt.Fprintln(stderr, "extauthz check:", err)
		return 3
	}
	if allowed(resp) {
		return 0
	}
	return 1
}

// writeAnswer prints the response as check's output asks: a summary, after
// the steps with --explain, or JSON.
func writeAnswer(w io.Writer, resp *authv3.CheckResponse, steps []check.Step, explain, asJSON bool) error {
	if asJSON {
		b, err := protoJSON(resp)
		if err != nil {
			return err
		}
		if explain {
			if steps == nil {
				steps = []check.Step{}
			}
			b, err = json.MarshalIndent(struct {
				Steps    []check.Step    `json:"steps"`
				Response json.RawMessage `json:"response"`
			}{steps, b}, "", "  ")
			if err != nil {
				return err
			}
			b = append(b, '\n')
		}
		_, err = w.Write(b)
		return err
	}
	p := colorFor(w)
	if explain {
		printSteps(w, steps, p)
		fmt.Fprintln(w)
	}
	printSummary(w, resp, p)
	return nil
}

func readCheckRequest(name string) (*authv3.CheckRequest, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, err
	}
	req := &authv3.CheckRequest{}
	if err := protojson.Unmarshal(data, req); err != nil {
		return nil, fmt.Errorf("request %s: %w", name, err)
	}
	return req, nil
}

// remoteCheck asks the server at addr over a connection with creds
// (plaintext or TLS, see dialTLS).
func remoteCheck(ctx context.Context, addr string, creds credentials.TransportCredentials, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	target := addr
	if !strings.HasPrefix(target, "unix://") {
		target = "passthrough:///" + target
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return authv3.NewAuthorizationClient(conn).Check(ctx, req)
}
