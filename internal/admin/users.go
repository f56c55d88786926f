package admin

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/stepgate/stepgate/internal/authn/tap"
	"github.com/stepgate/stepgate/internal/risk"
	"github.com/stepgate/stepgate/internal/store"
)

// UserSummary is one row of the users page.
type UserSummary struct {
	ID          string   `json:"id"`
	Username    string   `json:"username"`
	Email       string   `json:"email,omitempty"`
	DisplayName string   `json:"display_name,omitempty"`
	Groups      []string `json:"groups,omitempty"`
	Roles       []string `json:"roles,omitempty"`
	Disabled    bool     `json:"disabled"`
	Admin       bool     `json:"admin"`
}

// UserDetail is a user with their methods, sessions and risk.
type UserDetail struct {
	UserSummary
	Methods  []MethodInfo  `json:"methods"`
	Sessions []SessionInfo `json:"sessions"`
	Risk     string        `json:"risk"`
	// RiskDetections are the built-in detections behind Risk, and
	// ReportedDetections those other systems reported that still count,
	// each with its source.
	RiskDetections     []risk.Detection        `json:"risk_detections,omitempty"`
	ReportedDetections []risk.OutsideDetection `json:"reported_detections,omitempty"`
	// Pass is the user's temporary access pass, if any.
	Pass *PassInfo `json:"temporary_access_pass,omitempty"`
}

// MethodInfo is a registered sign-in method (never its secret).
type MethodInfo struct {
	Type       string    `json:"type"`
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	// Detail is a passkey's authenticator model, or the recovery codes
	// left.
	Detail string `json:"detail,omitempty"`
}

// SessionInfo is a live browser session.
type SessionInfo struct {
	// ID names the session (the hash of its cookie, never the cookie
	// itself) for a risk detection about it.
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	IP         string    `json:"ip,omitempty"`
	UserAgent  string    `json:"user_agent,omitempty"`
	Methods    []string  `json:"methods"`
}

func summarize(u store.User) UserSummary {
	return UserSummary{ID: u.ID, Username: u.Username, Email: u.Email, DisplayName: u.DisplayName,
		Groups: u.Groups, Roles: u.Roles, Disabled: u.Disabled, Admin: IsAdmin(u)}
}

// UserPage is one page of users, ordered by username.
type UserPage struct {
	Users []UserSummary `json:"users"`
	// Next is the cursor of the following page: the last username of
	// this one; empty on the last page.
	Next string `json:"next_cursor,omitempty"`
}

// DefaultUserPage and MaxUserPage bound the users listed at once.
const (
	DefaultUserPage = 100
	MaxUserPage     = 1000
)

// Users lists a page of users after the username after, ordered by
// username; a non-empty filter keeps those whose username, email or
// display name contains it.
func (s *Service) Users(ctx context.Context, filter, after string, limit int) (UserPage, error) {
	switch {
	case limit == 0:
		limit = DefaultUserPage
	case limit < 0 || limit > MaxUserPage:
		return UserPage{}, invalid("limit must be between 1 and %d (got %d)", MaxUserPage, limit)
	}
	// One more than asked tells whether another page follows.
	found, err := s.Store.FindUsers(ctx, store.UserQuery{Match: filter, After: after, Limit: limit + 1})
	if err != nil {
		return UserPage{}, err
	}
	page := UserPage{Users: make([]UserSummary, 0, min(len(found), limit))}
	for _, u := range found[:min(len(found), limit)] {
		page.Users = append(page.Users, summarize(u))
	}
	if len(found) > limit {
		page.Next = page.Users[limit-1].Username
	}
	return page, nil
}

// User returns a user's detail.
func (s *Service) User(ctx context.Context, name string) (UserDetail, error) {
	u, err := s.userByName(ctx, name)
	if err != nil {
		return UserDetail{}, err
	}
	d := UserDetail{UserSummary: summarize(u), Methods: []MethodInfo{}, Sessions: []SessionInfo{}}
	creds, err := s.Store.ListCredentials(ctx, u.ID)
	if err != nil {
		return UserDetail{}, err
	}
	for _, c := range creds {
		info := MethodInfo{Type: c.Type, Name: c.Name, CreatedAt: c.CreatedAt, LastUsedAt: c.LastUsedAt}
		if s.CredentialDetail != nil {
			info.Detail = s.CredentialDetail(c)
		}
		d.Methods = append(d.Methods, info)
	}
	sessions, err := s.Store.ListUserSessions(ctx, u.ID)
	if err != nil {
		return UserDetail{}, err
	}
	now := s.Now()
	for _, ss := range sessions {
		if !now.Before(ss.ExpiresAt) {
			continue
		}
		info := SessionInfo{ID: ss.ID, CreatedAt: ss.CreatedAt, LastSeenAt: ss.LastSeenAt, ExpiresAt: ss.ExpiresAt, IP: ss.IP, UserAgent: ss.UserAgent, Methods: []string{}}
		for _, e := range ss.Events {
			if !slices.Contains(info.Methods, e.Method) {
				info.Methods = append(info.Methods, e.Method)
			}
		}
		d.Sessions = append(d.Sessions, info)
	}
	if s.UserRisk != nil {
		if d.Risk, err = s.UserRisk(ctx, u.ID); err != nil {
			return UserDetail{}, err
		}
	}
	if s.RiskDetail != nil {
		rd, err := s.RiskDetail(ctx, u.ID)
		if err != nil {
			return UserDetail{}, err
		}
		d.RiskDetections, d.ReportedDetections = rd.Detections, rd.Reported
	}
	if s.Passes != nil {
		if p, err := s.Passes.Get(ctx, u.ID); err == nil {
			info := passInfo(p, now)
			d.Pass = &info
		} else if !errors.Is(err, tap.ErrNone) {
			return UserDetail{}, err
		}
	}
	return d, nil
}

// RevokeSessions ends every session and token of a user.
func (s *Service) RevokeSessions(ctx context.Context, actor Actor, reason, name string) error {
	u, err := s.userByName(ctx, name)
	if err != nil {
		return err
	}
	if err := s.Revoke(ctx, u.ID, "admin-revoke"); err != nil {
		return err
	}
	return s.record(ctx, actor, "user.revoke", "user:"+u.Username, reason, nil, nil)
}

// ResetMFA removes every registered method but the password and ends
// the user's sessions and tokens, which may rest on those methods.
func (s *Service) ResetMFA(ctx context.Context, actor Actor, reason, name string) (int, error) {
	u, err := s.userByName(ctx, name)
	if err != nil {
		return 0, err
	}
	creds, err := s.Store.ListCredentials(ctx, u.ID)
	if err != nil {
		return 0, err
	}
	removed := make([]string, 0, len(creds))
	for _, c := range creds {
		if err := s.Store.DeleteCredential(ctx, c.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return 0, err
		}
		removed = append(removed, c.Type+":"+c.Name)
	}
	if err := s.Revoke(ctx, u.ID, "mfa-reset"); err != nil {
		return 0, err
	}
	return len(creds), s.record(ctx, actor, "user.mfa-reset", "user:"+u.Username, reason, map[string]any{"methods": removed}, map[string]any{"methods": []string{}})
}

// SetRisk confirms a user compromised (user risk high; sessions and
// tokens revoked) or dismisses their risk.
func (s *Service) SetRisk(ctx context.Context, actor Actor, reason, name string, compromised bool) error {
	u, err := s.userByName(ctx, name)
	if err != nil {
		return err
	}
	before := ""
	if s.UserRisk != nil {
		before, _ = s.UserRisk(ctx, u.ID)
	}
	if err := s.SetUserRisk(ctx, u.ID, compromised); err != nil {
		return err
	}
	action, after := "user.risk-dismiss", "none"
	if compromised {
		action, after = "user.risk-confirm-compromised", "high"
	}
	return s.record(ctx, actor, action, "user:"+u.Username, reason, map[string]string{"risk": before}, map[string]string{"risk": after})
}

// SetDisabled disables a user (their sessions and tokens end) or enables
// them again.
func (s *Service) SetDisabled(ctx context.Context, actor Actor, reason, name string, disabled bool) error {
	u, err := s.userByName(ctx, name)
	if err != nil {
		return err
	}
	if u.Disabled == disabled {
		return nil
	}
	if _, err := s.Store.UpdateUser(ctx, u.ID, func(cur store.User) (store.User, error) {
		cur.Disabled = disabled
		return cur, nil
	}); err != nil {
		return err
	}
	action := "user.enable"
	if disabled {
		action = "user.disable"
		if err := s.Revoke(ctx, u.ID, "disabled"); err != nil {
			return err
		}
	}
	return s.record(ctx, actor, action, "user:"+u.Username, reason, map[string]bool{"disabled": !disabled}, map[string]bool{"disabled": disabled})
}

// PassInfo is a user's temporary access pass as administrators see it:
// never the pass itself, which is shown once when issued.
type PassInfo struct {
	Once      bool      `json:"once"`
	IssuedBy  string    `json:"issued_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	UsedAt    time.Time `json:"used_at,omitzero"`
	Usable    bool      `json:"usable"`
}

// IssuedPass is a pass just issued, with the code to hand to the user.
type IssuedPass struct {
	PassInfo
	Pass string `json:"pass"`
}

func passInfo(p tap.Pass, now time.Time) PassInfo {
	return PassInfo{Once: p.Once, IssuedBy: p.IssuedBy, CreatedAt: p.CreatedAt, ExpiresAt: p.ExpiresAt, UsedAt: p.UsedAt, Usable: p.Usable(now)}
}

// IssuePass gives a user a temporary access pass, good for registering
// sign-in methods for lifetime (once, when once is set) and nothing
// else. A user has at most one active pass: revoke it first.
func (s *Service) IssuePass(ctx context.Context, actor Actor, reason, name string, lifetime time.Duration, once bool) (IssuedPass, error) {
	if s.Passes == nil {
		return IssuedPass{}, &Error{Kind: NotFound, Message: "temporary access passes are not in use here"}
	}
	u, err := s.userByName(ctx, name)
	if err != nil {
		return IssuedPass{}, err
	}
	if u.Disabled {
		return IssuedPass{}, &Error{Kind: Conflict, Message: "user " + u.Username + " is disabled; enable the account first"}
	}
	code, p, err := s.Passes.Issue(ctx, u.ID, string(actor), lifetime, once)
	switch {
	case errors.Is(err, tap.ErrLifetime):
		return IssuedPass{}, invalid("%s (got %s)", err, lifetime)
	case errors.Is(err, tap.ErrActive):
		return IssuedPass{}, &Error{Kind: Conflict, Message: "user " + u.Username + " already has an active temporary access pass; revoke it first"}
	case err != nil:
		return IssuedPass{}, err
	}
	info := passInfo(p, s.Now())
	return IssuedPass{PassInfo: info, Pass: code}, s.record(ctx, actor, "user.tap-issue", "user:"+u.Username, reason, nil, info)
}

// Pass returns a user's active (or spent, unexpired) pass.
func (s *Service) Pass(ctx context.Context, name string) (PassInfo, error) {
	if s.Passes == nil {
		return PassInfo{}, &Error{Kind: NotFound, Message: "temporary access passes are not in use here"}
	}
	u, err := s.userByName(ctx, name)
	if err != nil {
		return PassInfo{}, err
	}
	p, err := s.Passes.Get(ctx, u.ID)
	if errors.Is(err, tap.ErrNone) {
		return PassInfo{}, &Error{Kind: NotFound, Message: "user " + u.Username + " has no temporary access pass"}
	}
	if err != nil {
		return PassInfo{}, err
	}
	return passInfo(p, s.Now()), nil
}

// RevokePass ends a user's pass at once: a registration it opened stops
// being allowed too.
func (s *Service) RevokePass(ctx context.Context, actor Actor, reason, name string) error {
	if s.Passes == nil {
		return &Error{Kind: NotFound, Message: "temporary access passes are not in use here"}
	}
	u, err := s.userByName(ctx, name)
	if err != nil {
		return err
	}
	err = s.Passes.Revoke(ctx, u.ID)
	if errors.Is(err, tap.ErrNone) {
		return &Error{Kind: NotFound, Message: "user " + u.Username + " has no temporary access pass"}
	}
	if err != nil {
		return err
	}
	return s.record(ctx, actor, "user.tap-revoke", "user:"+u.Username, reason, nil, nil)
}
