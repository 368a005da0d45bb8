package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
)

// validate loads a policy exactly as serve does, reading and checking local
// key files but fetching nothing, and prints every error, one a line
// ("file:line:column: field path: message"), and every warning about what
// the policy cannot do ("warning: " and the same), which alone do not fail
// it.
func validate(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", stderr)
	if err := parseFlags(fs, args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: extauthz validate PATH...")
		return 2
	}
	plane, err := keys.NewPlane(keys.Config{Offline: true})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer plane.Close()
	warn := func(w policy.FieldError) { fmt.Fprintln(stderr, "warning: "+w.Detail()) }
	snap, err := policy.Load(fs.Args(), policy.Options{Keys: plane, Warn: warn})
	if err != nil {
		var le *policy.LoadError
		if errors.As(err, &le) {
			for _, fe := range le.Errors {
				fmt.Fprintln(stderr, fe.Detail())
			}
		} else {
			fmt.Fprintln(stderr, err)
		}
		return 1
	}
	fmt.Fprintf(stdout, "ok: %d files, %d issuers, %d rules (sha256 %s)\n", len(snap.Files), len(snap.Issuers), len(snap.Rules), snap.Hash)
	return 0
}
