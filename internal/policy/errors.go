package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// FieldError is one problem in a policy file, located by file, line and
// column, and field path. Detail writes it the way compilers do, so editors
// and CI annotations can jump to it:
//
//	policy.yaml:12:7: rules[2].headers["x-is-agent"]: undeclared reference to 'clams'
//
// Line and Column are 1-based (Column counts characters); 0 when the
// problem has no place in the file (an empty file, for one).
type FieldError struct {
	File   string
	Line   int
	Column int
	Path   string
	Msg    string
}

// Error is Detail with the package prefix, as in logs.
func (e FieldError) Error() string { return "policy: " + e.Detail() }

// Detail is "file:line:column: path: message", each part left out when
// unknown.
func (e FieldError) Detail() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
			if e.Column > 0 {
				b.WriteString(":" + strconv.Itoa(e.Column))
			}
		}
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

// errorList collects FieldErrors (or warnings) for one file, placing each
// at its field path's line and column.
type errorList struct {
	file string
	src  *fileSource // nil: no positions
	errs *[]FieldError
}

// add reports a problem at path, placed where path (or, for a field that is
// missing, its nearest ancestor) is written.
func (l *errorList) add(path, format string, args ...any) {
	l.addAt(l.src.pos(path), path, format, args...)
}

// addAt reports a problem at path, placed at p.
func (l *errorList) addAt(p position, path, format string, args ...any) {
	*l.errs = append(*l.errs, FieldError{File: l.file, Line: p.line, Column: p.col, Path: path, Msg: fmt.Sprintf(format, args...)})
}
