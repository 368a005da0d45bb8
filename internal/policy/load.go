package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/extauthz/extauthz/internal/introspect"
	"github.com/extauthz/extauthz/internal/keys"
	policyv1 "github.com/extauthz/extauthz/proto/extauthz/policy/v1"
)

// Options configure Load.
type Options struct {
	// Keys builds the issuers' key sources. Local key material is read and
	// checked during Load; remote sources are not fetched.
	Keys *keys.Plane
	// Introspection builds the introspection issuers' clients and keeps
	// them across reloads; nil gives each load its own, without metrics.
	Introspection *introspect.Plane
	// Now stamps Snapshot.LoadedAt; nil means time.Now.
	Now func() time.Time
	// Warn, if set, is called after a successful load with each warning:
	// a part of the policy that loads but cannot do what it says (a header
	// that is never set, a rule that matching never selects; see lint).
	// WarnLogger logs them.
	Warn func(FieldError)
	// NoTokenKeys, when set, refuses every rule with internal_token with
	// this explanation: the server has no signing keys to mint with.
	NoTokenKeys string
}

// file is one parsed policy file.
type file struct {
	name string
	pf   *policyv1.PolicyFile
	node *yaml.Node
	// src places the file's field paths, for errors and warnings.
	src *fileSource
}

// Load reads the policy at paths (files, or directories whose *.yaml and
// *.yml files load in lexical order), validates and compiles it. Every
// problem found is reported in one *LoadError.
func Load(paths []string, opts Options) (*Snapshot, error) {
	src, err := read(paths)
	if err != nil {
		return nil, err
	}
	return src.compile(opts)
}

// source is the policy files as read from disk, before parsing.
type source struct {
	names []string
	data  [][]byte
	hash  string
}

// read expands paths and reads every file, hashing names and contents so a
// reload can tell whether anything changed.
func read(paths []string) (*source, error) {
	names, err := expand(paths)
	if err != nil {
		return nil, err
	}
	src := &source{names: names, data: make([][]byte, len(names))}
	h := sha256.New()
	for i, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(data))
		h.Write(data)
		src.data[i] = data
	}
	src.hash = hex.EncodeToString(h.Sum(nil))
	return src, nil
}

func (src *source) compile(opts Options) (*Snapshot, error) {
	var (
		errs  []FieldError
		files []*file
	)
	for i, name := range src.names {
		el := &errorList{file: name, errs: &errs}
		if f := parseFile(name, src.data[i], el); f != nil {
			files = append(files, f)
		}
	}
	if len(errs) > 0 {
		return nil, &LoadError{Errors: errs}
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	snap := compile(files, opts.Keys, opts.Introspection, &errs)
	if opts.NoTokenKeys != "" {
		refuseInternalTokens(files, opts.NoTokenKeys, &errs)
	}
	if len(errs) > 0 {
		return nil, &LoadError{Errors: errs}
	}
	snap.Hash = src.hash
	snap.LoadedAt = now()
	snap.Files = src.names
	if opts.Warn != nil {
		for _, w := range lint(files, snap) {
			opts.Warn(w)
		}
	}
	return snap, nil
}

// expand turns the --policy paths into the files to load, in load order.
func expand(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("policy: no policy path given")
	}
	var names []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		if !fi.IsDir() {
			names = append(names, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		var found []string
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			// Kubernetes ConfigMap volumes hold dot-directories (..data);
			// only regular policy files count.
			if strings.HasPrefix(e.Name(), ".") || (ext != ".yaml" && ext != ".yml") {
				continue
			}
			full := filepath.Join(p, e.Name())
			if st, err := os.Stat(full); err == nil && st.Mode().IsRegular() {
				found = append(found, full)
			}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("policy: %s: no *.yaml or *.yml files", p)
		}
		sort.Strings(found)
		names = append(names, found...)
	}
	return names, nil
}

func parseFile(name string, data []byte, el *errorList) *file {
	var doc yaml.Node
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&doc); err != nil {
		line, msg := yamlErrorLine(err)
		el.addAt(position{line: line}, "", "not valid YAML: %s", msg)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		el.addAt(nodePos(&extra), "", "holds more than one YAML document; use one file per document")
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		el.add("", "empty policy file")
		return nil
	}
	src := newFileSource(data)
	src.record("", nil, doc.Content[0])
	el.src = src
	pf := &policyv1.PolicyFile{}
	d := decoder{errs: el}
	d.message(doc.Content[0], pf.ProtoReflect(), "")
	if pf.GetVersion() != "v1" {
		el.add("version", "must be \"v1\", got %q", pf.GetVersion())
	}
	return &file{name: name, pf: pf, node: doc.Content[0], src: src}
}

// yamlErrorLine takes the line out of a YAML parser error ("yaml: line 3:
// did not find expected key"), so the error is placed like the others: 0
// when it names none.
func yamlErrorLine(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	rest, ok := strings.CutPrefix(msg, "line ")
	if !ok {
		return 0, msg
	}
	num, text, ok := strings.Cut(rest, ": ")
	line, err := strconv.Atoi(num)
	if !ok || err != nil || line < 1 {
		return 0, msg
	}
	return line, text
}
