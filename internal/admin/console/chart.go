package console

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
)

// The charts are drawn here, in Go, as plain geometry the templates turn
// into inline SVG: no script, no library, and every mark carries a
// <title> a screen reader (and a mouse hover) can read.

// Geometry of the decisions-over-time chart, in SVG user units.
const (
	timeLeft   = 48  // room for the y-axis labels
	timeTop    = 12  // room above the highest grid line's label
	timePlot   = 180 // plot height
	timeSlot   = 28  // width per bucket
	timeBar    = 20  // bar width within the slot
	timeBottom = 28  // room for the x-axis labels
)

// timeChart is one stacked bar per bucket: allowed, challenged, blocked
// and failed sign-ins.
type timeChart struct {
	Width, Height int
	Bars          []stackedBar
	Grid          []gridLine
	Labels        []axisLabel
	// PlotBottom is the y of the x axis; PlotRight its end.
	PlotBottom, PlotRight int
	Empty                 bool
}

type stackedBar struct {
	X     int
	Width int
	Segs  []segment
	Title string
}

type segment struct {
	Y, Height int
	Class     string
}

type gridLine struct {
	Y     int
	Label string
}

type axisLabel struct {
	X     int
	Label string
}

// newTimeChart lays out the overview's buckets.
func newTimeChart(o admin.Overview) timeChart {
	n := len(o.Buckets)
	ch := timeChart{Width: timeLeft + n*timeSlot + 8, Height: timeTop + timePlot + timeBottom,
		PlotBottom: timeTop + timePlot, PlotRight: timeLeft + n*timeSlot}
	peak := 0
	for _, b := range o.Buckets {
		peak = max(peak, b.Allow+b.Challenge+b.Block+b.Failure)
	}
	ch.Empty = peak == 0
	step := niceStep(peak)
	top := 4 * step
	for i := 0; i <= 4; i++ {
		ch.Grid = append(ch.Grid, gridLine{Y: ch.PlotBottom - i*timePlot/4, Label: strconv.Itoa(i * step)})
	}
	for i, b := range o.Buckets {
		ch.Bars = append(ch.Bars, bucketBar(b, i, top, o.Bucket))
		if i%6 == 0 {
			ch.Labels = append(ch.Labels, axisLabel{X: timeLeft + i*timeSlot + timeSlot/2, Label: bucketLabel(b.Start, o.Bucket)})
		}
	}
	return ch
}

// bucketBar stacks a bucket's counts from the axis up.
func bucketBar(b admin.Bucket, i, top int, width time.Duration) stackedBar {
	bar := stackedBar{X: timeLeft + i*timeSlot + (timeSlot-timeBar)/2, Width: timeBar,
		Title: fmt.Sprintf("%s to %s: %d allowed, %d challenged, %d blocked, %d failed sign-ins",
			b.Start.UTC().Format("Jan 2 15:04"), b.Start.Add(width).UTC().Format("Jan 2 15:04"), b.Allow, b.Challenge, b.Block, b.Failure)}
	y := timeTop + timePlot
	for _, part := range []struct {
		n     int
		class string
	}{{b.Allow, "s-allow"}, {b.Challenge, "s-challenge"}, {b.Block, "s-block"}, {b.Failure, "s-failure"}} {
		h := scale(part.n, top, timePlot)
		if h == 0 {
			continue
		}
		y -= h
		bar.Segs = append(bar.Segs, segment{Y: y, Height: h, Class: part.class})
	}
	return bar
}

// scale maps n of top onto size units, keeping any non-zero count
// visible.
func scale(n, top, size int) int {
	if n <= 0 || top <= 0 {
		return 0
	}
	return max(1, int(math.Round(float64(n)*float64(size)/float64(top))))
}

// niceStep is the grid step for four lines that reach at least peak: 1,
// 2 or 5 times a power of ten.
func niceStep(peak int) int {
	want := max(1, (peak+3)/4)
	for p := 1; ; p *= 10 {
		for _, m := range []int{1, 2, 5} {
			if m*p >= want {
				return m * p
			}
		}
	}
}

func bucketLabel(t time.Time, bucket time.Duration) string {
	if bucket < 2*time.Hour {
		return t.UTC().Format("15:04")
	}
	return t.UTC().Format("Jan 2")
}

// Geometry of the top-policies chart.
const (
	policyLabel = 220 // room for the policy name
	policyBars  = 420 // the longest bar
	policyPitch = 44  // height per policy: two bars and a gap
	policyBar   = 16
	policyMax   = 8 // policies shown
)

// policyChart compares, per policy, what it did enforced (challenges and
// blocks) with what it would have done in report-only.
type policyChart struct {
	Width, Height int
	Rows          []policyRow
}

type policyRow struct {
	Y        int
	Name     string
	Enforced policyBarView
	Report   policyBarView
}

type policyBarView struct {
	X, Y, Width, Count int
	TextX, TextY       int
	Title              string
}

func newPolicyChart(stats []admin.PolicyStats) policyChart {
	if len(stats) > policyMax {
		stats = stats[:policyMax]
	}
	peak := 1
	for _, s := range stats {
		peak = max(peak, s.Challenged+s.Blocked, s.WouldChallenge+s.WouldBlock)
	}
	ch := policyChart{Width: policyLabel + policyBars + 60, Height: len(stats)*policyPitch + 4}
	for i, s := range stats {
		y := i*policyPitch + 4
		ch.Rows = append(ch.Rows, policyRow{Y: y + policyBar + 2, Name: s.Policy,
			Enforced: policyBarOf(y, s.Challenged+s.Blocked, peak,
				fmt.Sprintf("%s, enforced: %d challenged, %d blocked", s.Policy, s.Challenged, s.Blocked)),
			Report: policyBarOf(y+policyBar+4, s.WouldChallenge+s.WouldBlock, peak,
				fmt.Sprintf("%s, report-only: would have challenged %d, would have blocked %d", s.Policy, s.WouldChallenge, s.WouldBlock)),
		})
	}
	return ch
}

func policyBarOf(y, n, peak int, title string) policyBarView {
	w := scale(n, peak, policyBars)
	return policyBarView{X: policyLabel, Y: y, Width: w, Count: n, TextX: policyLabel + w + 6, TextY: y + policyBar - 3, Title: title}
}

// ring is the step-up completion gauge: a circle whose stroke is drawn
// for the completed share.
type ring struct {
	Radius        int
	Circumference string
	// Dash is the stroke-dasharray: the drawn length, then the rest.
	Dash    string
	Percent string
}

func newRing(rate float64) ring {
	const r = 52
	c := 2 * math.Pi * r
	return ring{Radius: r, Circumference: fmt.Sprintf("%.1f", c),
		Dash: fmt.Sprintf("%.1f %.1f", rate*c, c), Percent: fmt.Sprintf("%.0f%%", 100*rate)}
}
