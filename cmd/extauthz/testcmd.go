package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/extauthz/extauthz/internal/suite"
)

// testCmd runs policy test files, like `opa test` (package suite). Exit 0
// when all pass, 1 when any fails, 2 on file errors.
func testCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("test", stderr)
	run := fs.String("run", "", "run only tests whose name matches this regular expression")
	verbose := fs.Bool("v", false, "print the decision steps of passing tests too (failing tests always print them)")
	format := fs.String("format", "text", "output: text, json, or junit (JUnit XML); with json and junit the summary goes to stderr")
	nowFlag := fs.String("now", "", "the clock of every file, RFC 3339 (overrides each file's now:)")
	if err := parseFlags(fs, args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: extauthz test [-run REGEXP] [-v] [--format text|json|junit] [--now RFC3339] PATH...  (test files, or directories holding *_test.yaml)")
		return 2
	}
	filter, err := regexp.Compile(*run)
	if err != nil {
		fmt.Fprintln(stderr, "extauthz test: -run:", err)
		return 2
	}
	var now time.Time
	if *nowFlag != "" {
		if now, err = time.Parse(time.RFC3339, *nowFlag); err != nil {
			fmt.Fprintln(stderr, "extauthz test: --now:", err)
			return 2
		}
	}
	return suite.Run(ctx, fs.Args(), suite.Options{Filter: filter, Now: now, Format: *format, Verbose: *verbose}, stdout, stderr)
}
