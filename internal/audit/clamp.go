package audit

import (
	"slices"
	"unicode/utf8"

	"github.com/stepgate/stepgate/internal/reason"
)

// Bounds of what one sign-in log entry holds of the request it describes.
//
// Anonymous clients write to the sign-in log: every failed or throttled
// sign-in and every authorization request of someone not signed in makes
// an entry, kept for the retention period. Their user agent (up to the
// server's header limit, a megabyte) and the user name they typed would
// otherwise be stored whole, so a flood of large requests would grow the
// log by a megabyte a request. Clamped, an entry stays a few kilobytes.
const (
	maxEntryField = 256 // bytes of one free-text field
	maxEntryList  = 16  // items of one list of names
)

// clamp bounds the fields of e that a client chooses.
func clamp(e *SignIn) {
	for _, s := range []*string{&e.RequestID, &e.Username, &e.App, &e.IP, &e.Country, &e.Device,
		&e.ClientApp, &e.Platform, &e.Decision, &e.RiskLevel} {
		*s = clampString(*s)
	}
	e.Reason = reason.Code(clampString(string(e.Reason)))
	e.Contexts = clampList(e.Contexts)
	e.MethodsPrompted = clampList(e.MethodsPrompted)
	e.MethodsCompleted = clampList(e.MethodsCompleted)
	// A copy: the caller's detections stay as they were.
	e.Risk = slices.Clone(e.Risk[:min(len(e.Risk), maxEntryList)])
	for i, d := range e.Risk {
		if len(d.Evidence) == 0 {
			continue
		}
		ev := make(map[string]string, len(d.Evidence))
		for k, v := range d.Evidence {
			if len(ev) == maxEntryList {
				break
			}
			ev[clampString(k)] = clampString(v)
		}
		e.Risk[i].Evidence = ev
	}
	if e.Elevation != nil {
		el := *e.Elevation
		el.ID, el.Role, el.Actor, el.Comment = clampString(el.ID), clampString(el.Role), clampString(el.Actor), clampString(el.Comment)
		e.Elevation = &el
	}
	if e.Facts != nil {
		f := *e.Facts
		f.App, f.Action, f.Country, f.Platform, f.ClientApp = clampString(f.App), clampString(f.Action),
			clampString(f.Country), clampString(f.Platform), clampString(f.ClientApp)
		f.Device.ID = clampString(f.Device.ID)
		f.AuthContexts, f.AcceptedTerms = clampList(f.AuthContexts), clampList(f.AcceptedTerms)
		e.Facts = &f
	}
}

// clampString cuts s to maxEntryField bytes on a character boundary and
// marks the cut, so the log shows that more was sent.
func clampString(s string) string {
	if len(s) <= maxEntryField {
		return s
	}
	cut := maxEntryField - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// clampList bounds a list of names and each name in it.
func clampList(l []string) []string {
	if len(l) > maxEntryList {
		l = l[:maxEntryList]
	}
	var out []string
	for _, s := range l {
		out = append(out, clampString(s))
	}
	return out
}
