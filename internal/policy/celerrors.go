package policy

import (
	"strings"
)

// maxExprErrors bounds the errors reported for one expression: past the
// first few, CEL's parser mostly reports the consequences of the first.
const maxExprErrors = 5

// exprError reports at path the failure msg of compiling the CEL expression
// src. Parse and type errors are reported one by one, each placed where it
// is in the file when the expression's YAML scalar can be read back
// character for character, else at the field with its place in the
// expression.
//
// The expression is compiled again to have CEL's located errors: failures
// are rare, so compileExpr stays as cheap as it was for every good policy.
func (c *compiler) exprError(el *errorList, path, src, msg string) {
	_, iss := c.env.Compile(src)
	if iss == nil || iss.Err() == nil {
		el.add(path, "%s", msg)
		return
	}
	errs := iss.Errors()
	for i, e := range errs {
		if i == maxExprErrors {
			el.add(path, "and %d more errors in the expression", len(errs)-i)
			return
		}
		m := strings.TrimSuffix(e.Message, " (in container '')")
		line, col := e.Location.Line(), e.Location.Column()
		if p, ok := el.src.exprPos(path, line, col); ok {
			el.addAt(p, path, "%s", m)
			continue
		}
		switch {
		case line < 1 || col < 0:
			el.add(path, "%s", m)
		case strings.Contains(src, "\n"):
			el.add(path, "%s (at line %d, column %d of the expression)", m, line, col+1)
		default:
			el.add(path, "%s (at column %d of the expression)", m, col+1)
		}
	}
}
