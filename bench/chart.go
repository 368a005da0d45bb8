package bench

import (
	"fmt"
	"html"
	"math"
	"runtime"
	"strings"
)

var serverColors = map[string]string{
	srvFloor:    "#9e9e9e",
	srvExt:      "#1f77b4",
	srvBase:     "#aec7e8",
	srvOPA:      "#ff7f0e",
	srvOPACache: "#ffbb78",
	srvHeimdall: "#2ca02c",
}

// chart draws two horizontal bar panels, checks/s and server CPU µs per
// Check, with a group of bars per scenario and a bar per server.
func (r *report) chart() string {
	type bar struct {
		server    string
		rate, cpu float64
	}
	type group struct {
		name string
		bars []bar
	}
	var groups []group
	maxRate, maxCPU := 0.0, 0.0
	for _, sc := range r.scenarios() {
		if isFixed(sc) {
			continue
		}
		g := group{name: sc}
		for _, srv := range servers {
			s := r.get(sc, srv)
			if !s.ok {
				continue
			}
			g.bars = append(g.bars, bar{srv, s.rate, s.cpu})
			maxRate, maxCPU = math.Max(maxRate, s.rate), math.Max(maxCPU, s.cpu)
		}
		groups = append(groups, g)
	}
	const (
		width    = 1160
		labelW   = 230
		panelW   = 380
		gap      = 60
		barH     = 14
		barGap   = 3
		groupGap = 14
		top      = 84
	)
	height := top + 30
	for _, g := range groups {
		height += len(g.bars)*(barH+barGap) + groupGap
	}
	maxRate, maxCPU = niceCeil(maxRate), niceCeil(maxCPU)

	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n", width, height, width, height)
	w(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	w(`<text x="%d" y="22" font-size="16" font-weight="bold">extauthz and its peers: ext_authz Checks over gRPC on %d cores (medians of %d rounds)</text>`+"\n", 10, runtime.NumCPU(), r.cfg.Rounds)
	// Legend.
	x := 10
	for _, srv := range servers {
		if !r.hasServer(srv) {
			continue
		}
		name := srv
		if srv == srvFloor {
			name = "no-op floor"
		}
		w(`<rect x="%d" y="34" width="12" height="12" fill="%s"/><text x="%d" y="45">%s</text>`+"\n", x, serverColors[srv], x+16, html.EscapeString(name))
		x += 30 + 8*len(name)
	}
	panels := []struct {
		title string
		x0    int
		max   float64
		val   func(bar) float64
		unit  string
	}{
		{"checks/s (higher is better)", labelW, maxRate, func(b bar) float64 { return b.rate }, "%.0f"},
		{"server CPU µs per Check (lower is better)", labelW + panelW + gap + 40, maxCPU, func(b bar) float64 { return b.cpu }, "%.1f"},
	}
	for _, p := range panels {
		w(`<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", p.x0, top-8, html.EscapeString(p.title))
		// Grid lines at quarters.
		for i := 0; i <= 4; i++ {
			gx := p.x0 + panelW*i/4
			w(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#e0e0e0"/>`+"\n", gx, top, gx, height-25)
			w(`<text x="%d" y="%d" text-anchor="middle" fill="#666">%s</text>`+"\n", gx, height-10, axisLabel(p.max*float64(i)/4))
		}
	}
	y := top
	for _, g := range groups {
		gh := len(g.bars) * (barH + barGap)
		w(`<text x="%d" y="%d" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", labelW-8, y+gh/2, html.EscapeString(g.name))
		for i, bb := range g.bars {
			by := y + i*(barH+barGap)
			for _, p := range panels {
				v := p.val(bb)
				bw := 0
				if p.max > 0 {
					bw = int(math.Round(v / p.max * panelW))
				}
				w(`<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s, %s: %s</title></rect>`+"\n",
					p.x0, by, max(bw, 1), barH, serverColors[bb.server], html.EscapeString(g.name), html.EscapeString(bb.server), fmt.Sprintf(p.unit, v))
				w(`<text x="%d" y="%d" font-size="10" dominant-baseline="middle" fill="#333">%s</text>`+"\n", p.x0+bw+4, by+barH/2+1, fmt.Sprintf(p.unit, v))
			}
		}
		y += gh + groupGap
	}
	w("</svg>\n")
	return b.String()
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func axisLabel(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%gk", math.Round(v/100)/10)
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}
