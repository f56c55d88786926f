package observe

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/store"
)

// told reports whether people are told of e. A request is announced once
// its requester has given the proof its role asks for: until then anyone
// holding just a password could make requests, and withdraw and make
// them again, to flood approvers' mailboxes and the chat channel. What
// happens to an unproven request is in the audit trail and the sign-in
// log only. A proof that turns the role active at once is told as the
// activation, not twice.
func told(e elevate.Event, r elevate.Role) bool {
	switch {
	case e.Elevation.ProvenAt.IsZero():
		return false
	case e.Kind == elevate.Requested:
		return false
	case e.Kind == elevate.Proven:
		return r.Approvers != nil
	}
	return true
}

// headline is e in one sentence, for a mail's subject and a chat line.
func headline(e elevate.Event, r elevate.Role) string {
	el, who, by := e.Elevation, username(e), actorName(e)
	switch e.Kind {
	case elevate.Requested:
		return fmt.Sprintf("%s asked for %s for %s", who, el.Role, duration(el.Duration))
	case elevate.Proven:
		return fmt.Sprintf("%s asks for %s for %s and waits for approval", who, el.Role, duration(el.Duration))
	case elevate.Approved:
		if r.Approvers != nil && r.Approvers.Count > 1 {
			return fmt.Sprintf("%s approved %s's request for %s (%d of %d approvals)", by, who, el.Role, approvedBy(el), r.Approvers.Count)
		}
		return fmt.Sprintf("%s approved %s's request for %s", by, who, el.Role)
	case elevate.Denied:
		return fmt.Sprintf("%s denied %s's request for %s", by, who, el.Role)
	case elevate.Activated:
		return fmt.Sprintf("%s is active for %s until %s", el.Role, who, clock(el.Until))
	case elevate.Expired:
		if el.ActivatedAt.IsZero() {
			return fmt.Sprintf("%s's request for %s lapsed: nobody decided in time", who, el.Role)
		}
		return fmt.Sprintf("%s's %s ended at its time", who, el.Role)
	case elevate.Deactivated:
		what := "%s's %s was ended"
		if el.ActivatedAt.IsZero() {
			what = "%s's request for %s was withdrawn"
		}
		return fmt.Sprintf(what+" by %s", who, el.Role, by)
	}
	return fmt.Sprintf("%s's elevation to %s: %s", who, el.Role, e.Kind)
}

// detail is one line under the headline. Typed marks what a requester
// or approver wrote, which a chat message shows as inert text.
type detail struct {
	label, value string
	typed        bool
}

// details are the lines under the headline: what was asked, and what
// the actor said.
func details(e elevate.Event) []detail {
	el := e.Elevation
	out := []detail{{label: "Role", value: el.Role}, {label: "For", value: username(e)}, {label: "Duration", value: duration(el.Duration)}}
	if len(el.Scope) > 0 {
		out = append(out, detail{label: "Apps", value: strings.Join(el.Scope, ", ")})
	}
	if el.Justification != "" {
		out = append(out, detail{label: "Justification", value: plain(el.Justification), typed: true})
	}
	if el.Ticket != "" {
		out = append(out, detail{label: "Ticket", value: plain(el.Ticket), typed: true})
	}
	if !el.Until.IsZero() {
		out = append(out, detail{label: "Until", value: clock(el.Until)})
	}
	if c := e.Comment; c != "" && e.Kind != elevate.Requested {
		out = append(out, detail{label: "Comment", value: plain(c), typed: true})
	}
	return append(out, detail{label: "Request", value: el.ID})
}

func actorName(e elevate.Event) string {
	switch {
	case e.Actor == "system":
		return "Stepgate"
	case e.ActorName != "":
		return e.ActorName
	case e.Actor == e.Elevation.UserID:
		return username(e)
	}
	return e.Actor
}

func duration(d time.Duration) string {
	s := strings.TrimSuffix(d.Round(time.Minute).String(), "0s") // 1h30m, 1h0m, 45m
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func clock(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// approversOf are the users who may approve e's request: the members of
// the role's approver group, never the requester, and none disabled.
func approversOf(users []store.User, e elevate.Event, r elevate.Role) []store.User {
	if r.Approvers == nil {
		return nil
	}
	var out []store.User
	for _, u := range users {
		if u.ID == e.Elevation.UserID || u.Disabled || !slices.Contains(u.Groups, r.Approvers.Group) {
			continue
		}
		out = append(out, u)
	}
	return out
}
