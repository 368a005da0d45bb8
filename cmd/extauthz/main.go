// Command extauthz is the Envoy ext_authz gRPC server that verifies OAuth
// client assertions and bearer JWTs against a policy.
//
//	extauthz serve --policy PATH [--policy PATH...]   serve Checks
//	extauthz validate PATH...                          load a policy and report every error
//	extauthz check [--policy PATH | --addr ADDR] ...   decide one request (from flags, curl or protojson)
//	extauthz test PATH...                              run policy test files (*_test.yaml)
//	extauthz version                                   print the version
//
// Every flag can also be set with an EXTAUTHZ_* environment variable
// (--grpc-addr is EXTAUTHZ_GRPC_ADDR).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: extauthz <command> [flags]

commands:
  serve     serve ext_authz Checks (extauthz serve --help)
  validate  load policy files as serve would and print every error
  check     decide one request, built from flags or a curl line, offline or by a running server
  test      run policy test files (*_test.yaml) against an in-process server
  version   print the version
`

// run dispatches a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "validate":
		return validate(args[1:], stdout, stderr)
	case "check":
		return checkCmd(ctx, args[1:], stdout, stderr)
	case "test":
		return testCmd(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "extauthz", version())
		return 0
	case "help", "--help", "-h", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "extauthz: unknown command %q\n\n%s", args[0], usage)
	return 2
}
