package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// decoder maps a YAML document onto a proto message strictly: unknown
// fields, duplicate keys, wrong scalar types and two members of one oneof are
// errors, each reported with its field path. protojson is not used because
// its errors carry no path and YAML's loose typing ("on" as a bool, 0x10 as a
// number) must not leak into security policy.
type decoder struct {
	// errs collects the errors; its src records where each field path is
	// written.
	errs *errorList
	// nodes counts the nodes visited, aliases expanded, so a small file of
	// nested aliases (a "billion laughs") cannot make the loader do
	// unbounded work; depth bounds nesting, so a recursive alias cannot
	// overflow the stack.
	nodes, depth int
	exceeded     bool
}

const (
	maxYAMLNodes = 100_000
	maxYAMLDepth = 64
)

// enter accounts for one node at path and reports whether decoding may go
// on; every enter that returns true is paired with a leave.
func (d *decoder) enter(path string) bool {
	if d.exceeded {
		return false
	}
	d.nodes++
	d.depth++
	switch {
	case d.nodes > maxYAMLNodes:
		d.errs.add(path, "the document expands to more than %d nodes (YAML aliases?)", maxYAMLNodes)
	case d.depth > maxYAMLDepth:
		d.errs.add(path, "nested more than %d levels deep (a recursive YAML alias?)", maxYAMLDepth)
	default:
		return true
	}
	d.exceeded = true
	d.depth--
	return false
}

func (d *decoder) leave() { d.depth-- }

var (
	durationName = (&durationpb.Duration{}).ProtoReflect().Descriptor().FullName()
	structName   = (&structpb.Struct{}).ProtoReflect().Descriptor().FullName()
)

func (d *decoder) message(n *yaml.Node, m protoreflect.Message, path string) {
	if !d.enter(path) {
		return
	}
	defer d.leave()
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errs.addAt(nodePos(n), path, "expected a mapping, got %s", describe(n))
		return
	}
	md := m.Descriptor()
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errs.addAt(nodePos(k), path, "expected a field name, got %s", describe(k))
			continue
		}
		name := k.Value
		fpath := join(path, name)
		if seen[name] {
			d.errs.addAt(nodePos(k), fpath, "set more than once")
			continue
		}
		seen[name] = true
		fd := md.Fields().ByName(protoreflect.Name(name))
		if fd == nil || fd.TextName() != name {
			d.errs.addAt(nodePos(k), fpath, "unknown field%s", suggestField(md, name))
			continue
		}
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if other := m.WhichOneof(od); other != nil {
				d.errs.addAt(nodePos(k), fpath, "only one of %s may be set (%s is set too)", oneofNames(od), other.Name())
				continue
			}
		}
		d.errs.src.record(fpath, k, resolve(v))
		d.field(v, m, fd, fpath)
	}
}

func (d *decoder) field(n *yaml.Node, m protoreflect.Message, fd protoreflect.FieldDescriptor, path string) {
	if !d.enter(path) {
		return
	}
	defer d.leave()
	n = resolve(n)
	switch {
	case fd.IsMap():
		if isNull(n) {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.errs.addAt(nodePos(n), path, "expected a mapping, got %s", describe(n))
			return
		}
		mp := m.Mutable(fd).Map()
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolve(n.Content[i])
			if k.Kind != yaml.ScalarNode || (k.Tag != "!!str" && k.Tag != "!!int") {
				d.errs.addAt(nodePos(k), path, "expected a string key, got %s", describe(k))
				continue
			}
			kpath := path + "[" + strconv.Quote(k.Value) + "]"
			mk := protoreflect.ValueOfString(k.Value).MapKey()
			if mp.Has(mk) {
				d.errs.addAt(nodePos(k), kpath, "set more than once")
				continue
			}
			d.errs.src.record(kpath, k, resolve(n.Content[i+1]))
			// Message values (issuer_variables) decode like any message.
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v := mp.NewValue()
				d.message(n.Content[i+1], v.Message(), kpath)
				mp.Set(mk, v)
				continue
			}
			if v, ok := d.scalar(n.Content[i+1], fd.MapValue(), kpath); ok {
				mp.Set(mk, v)
			}
		}
	case fd.IsList():
		if isNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.errs.addAt(nodePos(n), path, "expected a list, got %s", describe(n))
			return
		}
		l := m.Mutable(fd).List()
		for i, e := range n.Content {
			epath := fmt.Sprintf("%s[%d]", path, i)
			d.errs.src.record(epath, nil, resolve(e))
			if fd.Kind() == protoreflect.MessageKind {
				el := l.NewElement()
				d.message(e, el.Message(), epath)
				l.Append(el)
				continue
			}
			if v, ok := d.scalar(e, fd, epath); ok {
				l.Append(v)
			}
		}
	case fd.Kind() == protoreflect.MessageKind:
		switch fd.Message().FullName() {
		case durationName:
			if dur, ok := d.duration(n, path); ok {
				m.Set(fd, protoreflect.ValueOfMessage(durationpb.New(dur).ProtoReflect()))
			}
		case structName:
			if n.Kind != yaml.MappingNode {
				d.errs.addAt(nodePos(n), path, "expected a mapping, got %s", describe(n))
				return
			}
			v, err := d.toValue(n, path)
			if errors.Is(err, errTooLarge) {
				return
			}
			if err != nil {
				d.errs.addAt(nodePos(n), path, "%v", err)
				return
			}
			m.Set(fd, protoreflect.ValueOfMessage(v.GetStructValue().ProtoReflect()))
		default:
			d.message(n, m.Mutable(fd).Message(), path)
		}
	default:
		if v, ok := d.scalar(n, fd, path); ok {
			m.Set(fd, v)
		}
	}
}

// scalar converts a YAML scalar for a non-message field kind. Only YAML's
// own tag for the kind is accepted: a string field never takes a number or a
// bool, so `issuer: 0123` is an error rather than a silent "83".
func (d *decoder) scalar(n *yaml.Node, fd protoreflect.FieldDescriptor, path string) (protoreflect.Value, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errs.addAt(nodePos(n), path, "expected a %s, got %s", kindName(fd.Kind()), describe(n))
		return protoreflect.Value{}, false
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		if n.Tag != "!!str" {
			d.errs.addAt(nodePos(n), path, "expected a string, got %s (quote it)", describe(n))
			return protoreflect.Value{}, false
		}
		return protoreflect.ValueOfString(n.Value), true
	case protoreflect.BoolKind:
		if n.Tag != "!!bool" {
			break
		}
		switch n.Value {
		case "true":
			return protoreflect.ValueOfBool(true), true
		case "false":
			return protoreflect.ValueOfBool(false), true
		}
	case protoreflect.Int32Kind, protoreflect.Int64Kind:
		if n.Tag != "!!int" {
			break
		}
		if i, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
			if fd.Kind() == protoreflect.Int32Kind {
				return protoreflect.ValueOfInt32(int32(i)), true
			}
			return protoreflect.ValueOfInt64(i), true
		}
	}
	d.errs.addAt(nodePos(n), path, "expected a %s, got %s", kindName(fd.Kind()), describe(n))
	return protoreflect.Value{}, false
}

func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		d.errs.addAt(nodePos(n), path, "expected a duration such as \"30s\", got %s", describe(n))
		return 0, false
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil || dur < 0 {
		d.errs.addAt(nodePos(n), path, "expected a non-negative duration such as \"30s\", got %q", n.Value)
		return 0, false
	}
	return dur, true
}

// toValue converts free-form YAML (an inline JWK Set) to a structpb.Value.
func (d *decoder) toValue(n *yaml.Node, path string) (*structpb.Value, error) {
	if !d.enter(path) {
		return nil, errTooLarge
	}
	defer d.leave()
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		fields := make(map[string]*structpb.Value, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolve(n.Content[i])
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("expected a string key, got %s", describe(k))
			}
			if _, dup := fields[k.Value]; dup {
				return nil, fmt.Errorf("key %q set more than once", k.Value)
			}
			v, err := d.toValue(n.Content[i+1], path)
			if err != nil {
				return nil, err
			}
			fields[k.Value] = v
		}
		return structpb.NewStructValue(&structpb.Struct{Fields: fields}), nil
	case yaml.SequenceNode:
		vals := make([]*structpb.Value, 0, len(n.Content))
		for _, e := range n.Content {
			v, err := d.toValue(e, path)
			if err != nil {
				return nil, err
			}
			vals = append(vals, v)
		}
		return structpb.NewListValue(&structpb.ListValue{Values: vals}), nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return structpb.NewNullValue(), nil
		case "!!bool":
			return structpb.NewBoolValue(n.Value == "true"), nil
		case "!!int", "!!float":
			f, err := strconv.ParseFloat(n.Value, 64)
			if err != nil {
				return nil, fmt.Errorf("bad number %q", n.Value)
			}
			return structpb.NewNumberValue(f), nil
		default:
			return structpb.NewStringValue(n.Value), nil
		}
	}
	return nil, fmt.Errorf("unexpected %s", describe(n))
}

// errTooLarge stops toValue; enter has reported the error already.
var errTooLarge = errors.New("policy: document too large")

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		}
		return fmt.Sprintf("%s %s", strings.TrimPrefix(n.Tag, "!!"), n.Value)
	}
	return "an unexpected node"
}

func kindName(k protoreflect.Kind) string {
	switch k {
	case protoreflect.StringKind:
		return "string"
	case protoreflect.BoolKind:
		return "bool (true or false)"
	case protoreflect.Int32Kind, protoreflect.Int64Kind:
		return "integer"
	}
	return k.String()
}

func oneofNames(od protoreflect.OneofDescriptor) string {
	names := make([]string, od.Fields().Len())
	for i := range names {
		names[i] = string(od.Fields().Get(i).Name())
	}
	return strings.Join(names, ", ")
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
