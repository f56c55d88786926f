package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Elevation configures just-in-time elevation: how each role's
// activation works, and where requests are announced.
type Elevation struct {
	// Roles holds each role's activation settings. A role with an
	// eligible assignment but no entry here activates with the defaults:
	// at most 1h, no justification, MFA from the last 10 minutes, no
	// approval.
	Roles []ElevationRole `yaml:"roles"`
	// Webhook receives every request, decision, activation and end as
	// JSON a chat tool accepts as an incoming webhook.
	Webhook ElevationWebhook `yaml:"webhook"`
	// MaxPending is how many undecided requests one user may have at
	// once.
	MaxPending int `yaml:"max_pending"`
}

// ElevationRole is how one role is activated.
type ElevationRole struct {
	// Role is the role's name.
	Role string `yaml:"role"`
	// MaxDuration is the longest activation: default 1h, at most 24h.
	MaxDuration Duration `yaml:"max_duration"`
	// Justification and Ticket are "required" or "optional" (default).
	Justification string `yaml:"justification"`
	Ticket        string `yaml:"ticket"`
	// Context is the authentication context activation demands; the
	// live policies decide what it needs. Empty: MFA from the last 10
	// minutes.
	Context string `yaml:"context"`
	// Approvers, when set, must approve before the role turns active.
	Approvers *ElevationApprovers `yaml:"approvers"`
	// Notify are email addresses told of every request and outcome
	// besides the approvers and the requester.
	Notify []string `yaml:"notify"`
}

// ElevationApprovers are who approves a role's activation.
type ElevationApprovers struct {
	// Group's members approve; never the requester themself.
	Group string `yaml:"group"`
	// Count approvals are needed (default 1); one denial ends the
	// request.
	Count int `yaml:"count"`
	// Expire is how long a request waits for a decision (default 24h).
	Expire Duration `yaml:"expire"`
}

// ElevationWebhook is the outgoing webhook.
type ElevationWebhook struct {
	// URL is an https:// address (http:// only on loopback).
	URL string `yaml:"url"`
	// Secret signs each body (HMAC-SHA256 over timestamp and body);
	// receivers check it. At least 32 characters.
	Secret string `yaml:"secret"`
}

// Defaults and bounds of a role's activation.
const (
	DefaultElevationMax    = time.Hour
	MaxElevationDuration   = 24 * time.Hour
	DefaultApprovalExpiry  = 24 * time.Hour
	DefaultElevationMaxPen = 5
)

// RoleSettings returns role's settings with the defaults filled in.
func (e Elevation) RoleSettings(role string) ElevationRole {
	r := ElevationRole{Role: strings.ToLower(role)}
	for _, c := range e.Roles {
		if strings.EqualFold(c.Role, role) {
			r = c
		}
	}
	if r.MaxDuration == 0 {
		r.MaxDuration = Duration(DefaultElevationMax)
	}
	if r.Justification == "" {
		r.Justification = "optional"
	}
	if r.Ticket == "" {
		r.Ticket = "optional"
	}
	if r.Approvers != nil {
		a := *r.Approvers
		if a.Count == 0 {
			a.Count = 1
		}
		if a.Expire == 0 {
			a.Expire = Duration(DefaultApprovalExpiry)
		}
		r.Approvers = &a
	}
	return r
}

var roleNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

func (e Elevation) validate(ps *problems) {
	if e.MaxPending < 1 || e.MaxPending > 100 {
		ps.add("elevation.max_pending", "must be from 1 to 100 (got %d); the default is %d", e.MaxPending, DefaultElevationMaxPen)
	}
	seen := map[string]bool{}
	for i, r := range e.Roles {
		path := fmt.Sprintf("elevation.roles[%d]", i)
		if seen[r.Role] {
			ps.add(path+".role", "%q is configured twice; merge the two entries", r.Role)
		}
		seen[r.Role] = true
		r.validate(ps, path)
	}
	e.Webhook.validate(ps)
}

func (r ElevationRole) validate(ps *problems, path string) {
	if !roleNamePattern.MatchString(r.Role) {
		ps.add(path+".role", "%q is not a role name: use lower-case letters, digits, '.', '_' and '-' as in stepgate role list", r.Role)
	}
	if r.MaxDuration < 0 || r.MaxDuration > Duration(MaxElevationDuration) || (r.MaxDuration > 0 && r.MaxDuration < Duration(time.Minute)) {
		ps.add(path+".max_duration", "must be from 1m to 24h (got %s); the default is 1h", r.MaxDuration)
	}
	for key, v := range map[string]string{"justification": r.Justification, "ticket": r.Ticket} {
		if v != "" && v != "required" && v != "optional" {
			ps.add(path+"."+key, "must be required or optional (got %q)", v)
		}
	}
	if a := r.Approvers; a != nil {
		if strings.TrimSpace(a.Group) == "" {
			ps.add(path+".approvers.group", "names the group whose members approve, like security-leads")
		}
		if a.Count < 0 || a.Count > 10 {
			ps.add(path+".approvers.count", "must be from 1 to 10 (got %d); the default is 1", a.Count)
		}
		if a.Expire < 0 || (a.Expire > 0 && a.Expire < Duration(time.Minute)) || a.Expire > Duration(7*24*time.Hour) {
			ps.add(path+".approvers.expire", "must be from 1m to 168h (got %s); the default is 24h", a.Expire)
		}
	}
	for i, addr := range r.Notify {
		if !strings.Contains(addr, "@") || strings.ContainsAny(addr, " \r\n<>") {
			ps.add(path+".notify", "entry %d (%q) is not an email address", i+1, addr)
		}
	}
}

func (w ElevationWebhook) validate(ps *problems) {
	if w.URL == "" {
		if w.Secret != "" {
			ps.add("elevation.webhook.url", "is empty but a secret is set; set the receiver's URL or remove the secret")
		}
		return
	}
	u, err := url.Parse(w.URL)
	switch {
	case err != nil || u.Host == "":
		ps.add("elevation.webhook.url", "must be an absolute URL like https://chat.example.com/hooks/T0/B0")
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		ps.add("elevation.webhook.url", "must use https (http is allowed for loopback addresses only)")
	case u.Scheme != "http" && u.Scheme != "https":
		ps.add("elevation.webhook.url", "must use https")
	}
	if len(w.Secret) < 32 {
		ps.add("elevation.webhook.secret", "must be at least 32 characters; generate one with: openssl rand -base64 32")
	}
}

func loopbackHost(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}
