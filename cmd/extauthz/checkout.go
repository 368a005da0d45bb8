package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/extauthz/extauthz/internal/check"
)

// palette colours check's output; the zero palette writes plain text.
type palette struct{ on bool }

// colorFor colours output for w only when it is a terminal and NO_COLOR
// is unset (https://no-color.org).
func colorFor(w io.Writer) palette {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" {
		return palette{}
	}
	fi, err := f.Stat()
	return palette{on: err == nil && fi.Mode()&os.ModeCharDevice != 0}
}

func (p palette) paint(code, s string) string {
	if !p.on {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (p palette) green(s string) string { return p.paint("1;32", s) }
func (p palette) red(s string) string   { return p.paint("1;31", s) }
func (p palette) dim(s string) string   { return p.paint("2", s) }

// protoJSON writes m as protojson, indented by two spaces. protojson's own
// layout is deliberately unstable; re-indenting makes saved files diff
// cleanly.
func protoJSON(m proto.Message) ([]byte, error) {
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// allowed reads the decision of resp: its metadata, or for a server that
// sends none, whether it is an OkResponse.
func allowed(resp *authv3.CheckResponse) bool {
	if d := resp.GetDynamicMetadata().GetFields()["decision"]; d != nil {
		return d.GetStringValue() == "allow"
	}
	return resp.GetOkResponse() != nil
}

// printSummary writes the short human answer: the decision, rule and
// reason, the rest of the metadata, and what Envoy does with the request
// (headers set and removed, grouped by header) or answers the client.
func printSummary(w io.Writer, resp *authv3.CheckResponse, p palette) {
	line := func(label, value string) { fmt.Fprintf(w, "%-10s %s\n", label, value) }
	md := resp.GetDynamicMetadata().GetFields()
	str := func(k string) string { return md[k].GetStringValue() }
	denied := resp.GetDeniedResponse()
	if allowed(resp) {
		line("decision", p.green("allow"))
	} else {
		line("decision", p.red("deny")+fmt.Sprintf(" (HTTP %d)", denied.GetStatus().GetCode()))
	}
	line("rule", cmp.Or(str("rule"), "(none)"))
	line("reason", str("reason"))
	for _, k := range []string{"issuer", "client_id", "spiffe_id"} {
		if v := str(k); v != "" {
			line(k, v)
		}
	}
	if a := str("audit_decision"); a != "" {
		line("audit", "would "+a+" (audit mode allows and sets no headers)")
	}
	known := []string{"decision", "rule", "reason", "issuer", "client_id", "spiffe_id", "audit_decision"}
	for _, k := range slices.Sorted(maps.Keys(md)) {
		if !slices.Contains(known, k) {
			b, _ := protojson.Marshal(md[k])
			line(k, string(b))
		}
	}
	if ok := resp.GetOkResponse(); ok != nil {
		var set []string
		for _, h := range ok.GetHeaders() {
			set = append(set, strings.ToLower(h.GetHeader().GetKey()))
			line("set", h.GetHeader().GetKey()+": "+headerValue(h.GetHeader()))
		}
		for _, r := range removeGroups(ok.GetHeadersToRemove(), set) {
			line("remove", r)
		}
		for _, h := range ok.GetResponseHeadersToAdd() {
			line("response", h.GetHeader().GetKey()+": "+headerValue(h.GetHeader()))
		}
		return
	}
	for _, h := range denied.GetHeaders() {
		line("response", h.GetHeader().GetKey()+": "+headerValue(h.GetHeader()))
	}
	if b := denied.GetBody(); b != "" {
		line("body", b)
	}
}

func headerValue(h *corev3.HeaderValue) string {
	if raw := h.GetRawValue(); len(raw) > 0 {
		return string(raw)
	}
	return h.GetValue()
}

// removeGroups groups removed headers by the header they spell: every -/_
// spelling of a managed header is removed (x-client-id, x_client_id, …),
// which reads better as one line per header. A group whose header the
// response sets lists only the other spellings.
func removeGroups(removed, set []string) []string {
	canon := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "_", "-") }
	groups := map[string][]string{}
	for _, r := range removed {
		groups[canon(r)] = append(groups[canon(r)], r)
	}
	var out []string
	for _, c := range slices.Sorted(maps.Keys(groups)) {
		g := groups[c]
		if i := slices.IndexFunc(set, func(s string) bool { return canon(s) == c }); i >= 0 {
			what := "other spelling"
			if len(g) > 1 {
				what += "s"
			}
			out = append(out, fmt.Sprintf("%s (%s of %s)", strings.Join(g, ", "), what, set[i]))
			continue
		}
		first := slices.Index(g, c)
		if first < 0 {
			first = 0
		}
		rest := slices.Delete(slices.Clone(g), first, first+1)
		if len(rest) == 0 {
			out = append(out, g[first])
		} else {
			out = append(out, fmt.Sprintf("%s (and %s)", g[first], strings.Join(rest, ", ")))
		}
	}
	return out
}

// printSteps writes the trace of --explain: each check, ok or FAIL, and
// under a failed require the values it read.
func printSteps(w io.Writer, steps []check.Step, p palette) {
	for _, s := range steps {
		mark := p.green("ok  ")
		if !s.OK {
			mark = p.red("FAIL")
		}
		if s.Detail == "" {
			fmt.Fprintf(w, "%s %s\n", mark, s.Check)
		} else {
			fmt.Fprintf(w, "%s %s: %s\n", mark, s.Check, s.Detail)
		}
		for _, v := range s.Vars {
			fmt.Fprintf(w, "       %s %s %s\n", v.Name, p.dim("="), v.Value)
		}
	}
}
