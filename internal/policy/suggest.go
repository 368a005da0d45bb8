package policy

import (
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// maxSuggestLen bounds the unknown names worth a suggestion; longer ones are
// not typos of a field name.
const maxSuggestLen = 64

// suggestField is the hint after "unknown field" for name in a message md:
// the closest field names of md (`; did you mean "audiences"?`), else a
// field of a nested message of that name (`; did you mean
// "bearer.audiences" or "client_assertion.audiences"?`), else nothing.
func suggestField(md protoreflect.MessageDescriptor, name string) string {
	if name == "" || len(name) > maxSuggestLen {
		return ""
	}
	if names := closest(md, name, closeness(name)); len(names) > 0 {
		return didYouMean(names)
	}
	// Written one level too high: `audiences` directly in a rule.
	var nested []string
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Kind() != protoreflect.MessageKind || fd.IsList() || fd.IsMap() {
			continue
		}
		switch fd.Message().FullName() {
		case durationName, structName:
			continue
		}
		for _, n := range closest(fd.Message(), name, 1) {
			nested = append(nested, fd.TextName()+"."+n)
		}
	}
	return didYouMean(nested)
}

// closeness is how many edits a typo of name may hold: one per three
// characters, at least one.
func closeness(name string) int {
	return max(1, len(name)/3)
}

// closest lists the fields of md nearest to name, within limit edits.
func closest(md protoreflect.MessageDescriptor, name string, limit int) []string {
	fields := md.Fields()
	names := make([]string, fields.Len())
	for i := range names {
		names[i] = fields.Get(i).TextName()
	}
	return nearest(names, name, limit)
}

// nearest lists the candidates nearest to name, within limit edits, in
// their order: one that differs only in case, '-' and '_' (jwksUri,
// client-ids) is nearest of all.
func nearest(candidates []string, name string, limit int) []string {
	// d is 0 for a name equal but for case and separators, else 1 plus
	// the edit distance.
	maxD := limit + 1
	var (
		best  []string
		bestD = maxD + 1
	)
	lower, flat := strings.ToLower(name), flatten(name)
	for _, f := range candidates {
		d := 0
		if flatten(f) != flat {
			d = 1 + editDistance(lower, f, maxD)
		}
		switch {
		case d > maxD:
		case d < bestD:
			best, bestD = []string{f}, d
		case d == bestD:
			best = append(best, f)
		}
	}
	return best
}

// suggestIssuer is the hint after "no issuer named": the defined issuer
// names closest to name.
func (c *compiler) suggestIssuer(name string) string {
	if name == "" || len(name) > maxSuggestLen {
		return ""
	}
	names := make([]string, 0, len(c.snap.Issuers))
	for n := range c.snap.Issuers {
		names = append(names, n)
	}
	sort.Strings(names)
	return didYouMean(nearest(names, name, closeness(name)))
}

func flatten(s string) string {
	return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
}

func didYouMean(names []string) string {
	if len(names) == 0 {
		return ""
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	switch len(q) {
	case 1:
		return "; did you mean " + q[0] + "?"
	case 2:
		return "; did you mean " + q[0] + " or " + q[1] + "?"
	}
	return "; did you mean " + strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1] + "?"
}

// editDistance is the Levenshtein distance of a and b (in bytes: field
// names are ASCII), or some value >= stop once it must be at least stop.
func editDistance(a, b string, stop int) int {
	if d := len(a) - len(b); d >= stop || -d >= stop {
		return stop
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		low := cur[0]
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c = 1 + min(prev[j-1], prev[j], cur[j-1])
			}
			cur[j] = c
			low = min(low, c)
		}
		if low >= stop {
			return stop
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
