package policy

import (
	"fmt"
	"strings"
)

// FieldError is one problem in a policy file, located by file and field path
// (for example `policy.yaml: rules[2].headers["x-is-agent"]: undeclared
// reference to 'clams'`).
type FieldError struct {
	File string
	Path string
	Msg  string
}

func (e FieldError) Error() string {
	var b strings.Builder
	b.WriteString("policy: ")
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// LoadError holds every problem found while loading a policy, so an operator
// fixes them all in one pass.
type LoadError struct {
	Errors []FieldError
}

func (e *LoadError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		msgs[i] = fe.Error()
	}
	return strings.Join(msgs, "\n")
}

// errorList collects FieldErrors for one file.
type errorList struct {
	file string
	errs *[]FieldError
}

func (l *errorList) add(path, format string, args ...any) {
	*l.errs = append(*l.errs, FieldError{File: l.file, Path: path, Msg: fmt.Sprintf(format, args...)})
}
