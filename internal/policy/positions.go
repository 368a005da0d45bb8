package policy

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// position is a place in a policy file: 1-based line and column (columns
// count characters, as YAML's do); zero when unknown.
type position struct{ line, col int }

func nodePos(n *yaml.Node) position {
	if n == nil {
		return position{}
	}
	return position{n.Line, n.Column}
}

// fileSource remembers where each field path of one file is written, so
// errors found after decoding (by the compiler, in CEL) can say where.
type fileSource struct {
	// lines are the file's lines without their line ends, for placing
	// positions inside a CEL expression.
	lines []string
	at    map[string]placed
}

// placed is what the decoder saw at one field path: the key that named it
// (nil for list elements and the document) and its value, aliases resolved.
type placed struct{ key, value *yaml.Node }

func newFileSource(data []byte) *fileSource {
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return &fileSource{lines: lines, at: map[string]placed{}}
}

func (s *fileSource) record(path string, key, value *yaml.Node) {
	if s != nil {
		s.at[path] = placed{key: key, value: value}
	}
}

// pos is where path is written: its key, else its value. A path that is not
// in the file (a required field left out) is placed at its nearest
// ancestor that is.
func (s *fileSource) pos(path string) position {
	if s == nil {
		return position{}
	}
	if p, ok := s.at[path]; ok {
		return p.pos()
	}
	ends := segmentEnds(path)
	for k := len(ends) - 1; k >= 0; k-- {
		if p, ok := s.at[path[:ends[k]]]; ok {
			return p.pos()
		}
	}
	return s.at[""].pos()
}

func (p placed) pos() position {
	if p.key != nil {
		return nodePos(p.key)
	}
	return nodePos(p.value)
}

// segmentEnds lists the offsets at which each segment of a field path ends:
// for `rules[2].headers["a.b"]`, after `rules`, `[2]`, `.headers` and
// `["a.b"]`. Map keys are quoted (strconv.Quote), so a '.' or '[' in one is
// not a separator.
func segmentEnds(path string) []int {
	var ends []int
	for i := 0; i < len(path); {
		switch {
		case strings.HasPrefix(path[i:], "[\""):
			q, err := strconv.QuotedPrefix(path[i+1:])
			if err != nil || !strings.HasPrefix(path[i+1+len(q):], "]") {
				return ends
			}
			i += 1 + len(q) + 1
		case path[i] == '[':
			j := strings.IndexByte(path[i:], ']')
			if j < 0 {
				return ends
			}
			i += j + 1
		default:
			if path[i] == '.' {
				i++
			}
			j := strings.IndexAny(path[i:], ".[")
			if j == 0 {
				return ends
			}
			if j < 0 {
				j = len(path) - i
			}
			i += j
		}
		ends = append(ends, i)
	}
	return ends
}

// exprPos maps a position inside the CEL expression written at path (line
// 1-based, column 0-based, both in characters, as CEL reports them) to
// where it is in the file. ok is false when the expression is written in a
// way that cannot be mapped character for character (folded or multi-line
// flow scalars, tags).
func (s *fileSource) exprPos(path string, line, col int) (position, bool) {
	if s == nil || line < 1 || col < 0 {
		return position{}, false
	}
	n := s.at[path].value
	if n == nil || n.Kind != yaml.ScalarNode {
		return position{}, false
	}
	table, ok := scalarRunes(s.lines, n)
	if !ok {
		return position{}, false
	}
	// The rune offset of (line, col) in the expression.
	off := 0
	val := []rune(n.Value)
	for l := 1; l < line; l++ {
		for off < len(val) && val[off] != '\n' {
			off++
		}
		if off == len(val) {
			return position{}, false
		}
		off++
	}
	off += col
	if off >= len(table) {
		return position{}, false
	}
	return table[off], true
}

// scalarRunes places each character of a scalar's value in the file, plus
// one place for its end (where CEL reports an unexpected end of input). It
// reads the scalar's text back from the file and gives up (false) where it
// does not match the value character for character.
func scalarRunes(lines []string, n *yaml.Node) ([]position, bool) {
	if n.Line < 1 || n.Line > len(lines) || n.Column < 1 || n.Style&(yaml.TaggedStyle|yaml.FoldedStyle) != 0 {
		return nil, false
	}
	val := []rune(n.Value)
	if n.Style&yaml.LiteralStyle != 0 {
		return literalRunes(lines, n, val)
	}
	line := []rune(lines[n.Line-1])
	j := n.Column - 1
	if n.Anchor != "" {
		// The node starts at its anchor: &name, then blanks.
		a := []rune("&" + n.Anchor)
		if j+len(a) > len(line) || string(line[j:j+len(a)]) != string(a) {
			return nil, false
		}
		for j += len(a); j < len(line) && (line[j] == ' ' || line[j] == '\t'); j++ {
		}
	}
	table := make([]position, 0, len(val)+1)
	at := func(j int) position { return position{n.Line, j + 1} }
	switch {
	case n.Style&yaml.SingleQuotedStyle != 0:
		if j >= len(line) || line[j] != '\'' {
			return nil, false
		}
		j++
		for _, r := range val {
			switch {
			case j >= len(line):
				return nil, false
			case line[j] == '\'':
				if r != '\'' || j+1 >= len(line) || line[j+1] != '\'' {
					return nil, false
				}
				table = append(table, at(j))
				j += 2
			case line[j] != r:
				return nil, false
			default:
				table = append(table, at(j))
				j++
			}
		}
	case n.Style&yaml.DoubleQuotedStyle != 0:
		if j >= len(line) || line[j] != '"' {
			return nil, false
		}
		j++
		for _, r := range val {
			switch {
			case j >= len(line) || line[j] == '"':
				return nil, false
			case line[j] == '\\':
				if j+1 >= len(line) {
					return nil, false
				}
				table = append(table, at(j))
				switch line[j+1] {
				case 'x':
					j += 4
				case 'u':
					j += 6
				case 'U':
					j += 10
				default:
					j += 2
				}
			case line[j] != r:
				return nil, false
			default:
				table = append(table, at(j))
				j++
			}
		}
	default:
		for _, r := range val {
			if j >= len(line) || line[j] != r {
				return nil, false
			}
			table = append(table, at(j))
			j++
		}
	}
	return append(table, at(j)), true
}

// literalRunes places the characters of a literal block scalar (|): each
// value line is a file line with the block's indentation removed.
func literalRunes(lines []string, n *yaml.Node, val []rune) ([]position, bool) {
	vlines := strings.Split(string(val), "\n")
	indent := -1
	for k, vl := range vlines {
		if vl == "" {
			continue
		}
		if n.Line+k >= len(lines) {
			return nil, false
		}
		raw := lines[n.Line+k]
		if indent < 0 {
			indent = len(raw) - len(strings.TrimLeft(raw, " "))
		}
		if len(raw) < indent || raw[indent:] != vl {
			return nil, false
		}
	}
	if indent < 0 {
		return nil, false
	}
	table := make([]position, 0, len(val)+1)
	for k, vl := range vlines {
		c := 0
		for range vl {
			table = append(table, position{n.Line + 1 + k, indent + 1 + c})
			c++
		}
		// The line end, or for the last line the end of the value.
		table = append(table, position{n.Line + 1 + k, indent + 1 + c})
	}
	return table, true
}
