package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// Notifier delivers a notice to a user's email address: the email
// sender of one-time codes.
type Notifier interface {
	Notify(ctx context.Context, to, subject, body string) error
}

// change is an added or removed sign-in method.
type change struct {
	Added        bool
	Method       string
	CredentialID string
	// Via is what allowed it: fresh-proof, a pass, a recovery code, the
	// registration window.
	Via string
}

// report is a change as its "this wasn't me" link remembers it, stored
// under the link's nonce until the link expires.
type report struct {
	UserID       string    `json:"user_id"`
	Added        bool      `json:"added"`
	Method       string    `json:"method"`
	CredentialID string    `json:"credential_id"`
	Time         time.Time `json:"time"`
	IP           string    `json:"ip"`
	Place        string    `json:"place,omitempty"`
	Device       string    `json:"device"`
	// UsedAt is when the link was used; a link acts once.
	UsedAt time.Time `json:"used_at,omitzero"`
}

// reports are the changes "this wasn't me" links remember, by nonce.
var reports = kvspace.JSON[report](kvspace.ChangeReport)

// Errors of "this wasn't me" links, each with its own page.
var (
	errLinkBad     = errkind.New(errkind.Invalid, "the link is not valid")
	errLinkExpired = errkind.New(errkind.Gone, "the link has expired")
	errLinkUsed    = errkind.New(errkind.Gone, "the link was already used")
)

// methodChanged makes a change visible: the sign-in log, and a notice to
// the user with a "this wasn't me" link. The audit trail has it already.
// A notice that cannot be sent is logged, not fatal: the change is made
// and recorded either way.
func (p *Pages) methodChanged(r *http.Request, u store.User, c change) error {
	ctx := r.Context()
	why := reason.MethodRemoved
	if c.Added {
		why = reason.MethodAdded
	}
	if c.Via != "" && c.Via != "fresh-proof" {
		why = why.With(c.Via)
	}
	if err := p.logSecurity(r, u, c.Method, "success", why); err != nil {
		return err
	}
	if p.Notifier == nil || u.Email == "" || p.KV == nil {
		return nil
	}
	rep := report{UserID: u.ID, Added: c.Added, Method: c.Method, CredentialID: c.CredentialID, Time: p.Now().UTC(),
		IP: p.ClientIP.Of(r).String(), Device: truncate(r.UserAgent(), 200)}
	if p.Place != nil {
		rep.Place = p.Place(r)
	}
	link, err := p.reportLink(ctx, rep)
	if err != nil {
		return err
	}
	subject, body := p.noticeText(u, rep, link)
	if err := p.Notifier.Notify(ctx, u.Email, subject, body); err != nil {
		p.Log.WarnContext(ctx, "security change notice not sent", "user", u.Username, "err", err)
	}
	return nil
}

// noticeText is the mail about a change.
func (p *Pages) noticeText(u store.User, rep report, link string) (string, string) {
	what := "added to"
	if !rep.Added {
		what = "removed from"
	}
	place := rep.IP
	if rep.Place != "" {
		place += " (" + rep.Place + ")"
	}
	subject := "A sign-in method was " + what + " your account"
	body := fmt.Sprintf("Hello %s,\r\n\r\n"+
		"A sign-in method was %s your account.\r\n\r\n"+
		"  Method:  %s\r\n"+
		"  When:    %s\r\n"+
		"  Where:   %s\r\n"+
		"  Device:  %s\r\n\r\n"+
		"If this was you, there is nothing to do.\r\n\r\n"+
		"If this wasn't you, open this link to secure your account. It removes an\r\n"+
		"added method, signs you out everywhere and asks your administrator to\r\n"+
		"check the account:\r\n\r\n  %s\r\n\r\n"+
		"The link works once and expires on %s.\r\n",
		u.Username, what, p.label(rep.Method), rep.Time.Format("2006-01-02 15:04:05 UTC"), place, rep.Device,
		link, rep.Time.Add(p.ReportLinkLifetime).Format("2006-01-02 15:04 UTC"))
	return subject, body
}

// reportLink stores rep under a fresh nonce and returns the absolute
// link that reports it: nonce, expiry and an HMAC over both under the
// server's key, so a link cannot be forged, extended or guessed, and its
// expiry is known even once the stored record is gone.
func (p *Pages) reportLink(ctx context.Context, rep report) (string, error) {
	nonce := rand.Text()
	exp := rep.Time.Add(p.ReportLinkLifetime)
	if err := reports.At(nonce).Create(ctx, p.KV, rep, exp); err != nil {
		return "", fmt.Errorf("store the report link: %w", err)
	}
	token := nonce + "." + strconv.FormatInt(exp.Unix(), 10) + "." + p.reportMAC(nonce, exp.Unix())
	return strings.TrimSuffix(p.Issuer, "/") + "/account/security/report?t=" + url.QueryEscape(token), nil
}

func (p *Pages) reportMAC(nonce string, exp int64) string {
	m := hmac.New(sha256.New, p.ReportKey)
	m.Write([]byte("stepgate-report\x00" + nonce + "\x00" + strconv.FormatInt(exp, 10)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// openReport checks a link's token and returns its nonce and record.
func (p *Pages) openReport(ctx context.Context, token string) (string, report, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > 256 || len(p.ReportKey) == 0 {
		return "", report{}, errLinkBad
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || !hmac.Equal([]byte(parts[2]), []byte(p.reportMAC(parts[0], exp))) {
		return "", report{}, errLinkBad
	}
	if !p.Now().Before(time.Unix(exp, 0)) {
		return "", report{}, errLinkExpired
	}
	rep, err := reports.At(parts[0]).Get(ctx, p.KV)
	if errors.Is(err, store.ErrNotFound) {
		// Signed and unexpired, yet gone: used and cleared away.
		return "", report{}, errLinkUsed
	}
	if errors.Is(err, kvspace.ErrCorrupt) {
		return "", report{}, errLinkBad
	}
	if err != nil {
		return "", report{}, err
	}
	if !rep.UsedAt.IsZero() {
		return "", report{}, errLinkUsed
	}
	return parts[0], rep, nil
}

// reportView is the "this wasn't me" page.
type reportView struct {
	Token  string
	Report report
	Label  string
	Done   bool
}

// reportForm shows what the link reports and asks to confirm. A GET
// never acts: mail scanners open every link in a message, and a link
// that acted on GET would secure (and sign out) every account whose mail
// is scanned.
func (p *Pages) reportForm(w http.ResponseWriter, r *http.Request) error {
	token := r.URL.Query().Get("t")
	_, rep, err := p.openReport(r.Context(), token)
	if err != nil {
		return p.reportFailed(w, r, err)
	}
	p.render(w, r, http.StatusOK, "report", view{Title: "Secure your account", Report: &reportView{Token: token, Report: rep, Label: p.label(rep.Method)}})
	return nil
}

// report acts on a confirmed "this wasn't me": it removes the added
// method, ends every session and token of the user, and sets the user's
// risk high, so whoever made the change is out and stays out until an
// administrator has looked.
func (p *Pages) report(w http.ResponseWriter, r *http.Request) error {
	if err := p.parseForm(w, r); err != nil {
		return err
	}
	ctx := r.Context()
	nonce, _, err := p.openReport(ctx, r.PostFormValue("t"))
	if err != nil {
		return p.reportFailed(w, r, err)
	}
	var rep report
	err = reports.At(nonce).Update(ctx, p.KV, func(cur report) (report, error) {
		rep = cur
		if !rep.UsedAt.IsZero() {
			return rep, errLinkUsed
		}
		rep.UsedAt = p.Now().UTC()
		return rep, nil
	})
	if errors.Is(err, errLinkUsed) || errors.Is(err, store.ErrNotFound) {
		return p.reportFailed(w, r, errLinkUsed)
	}
	if err != nil {
		return err
	}
	if err := p.secure(r, rep); err != nil {
		return err
	}
	p.Sessions.ClearCookie(w)
	p.render(w, r, http.StatusOK, "report", view{Title: "Your account is secured", Report: &reportView{Report: rep, Label: p.label(rep.Method), Done: true}})
	return nil
}

// secure undoes what a reported change let in.
func (p *Pages) secure(r *http.Request, rep report) error {
	ctx := r.Context()
	u, err := p.Store.GetUser(ctx, rep.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if rep.Added && rep.CredentialID != "" {
		if err := p.Credentials.DeleteCredential(ctx, rep.CredentialID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if p.Revoke != nil {
		if err := p.Revoke(ctx, u.ID, "security-change-reported"); err != nil {
			return err
		}
	}
	if p.RaiseRisk != nil {
		p.RaiseRisk(ctx, u.ID)
	}
	p.Log.WarnContext(ctx, "a user reported a change of sign-in methods as not theirs", "user", u.Username, "method", rep.Method, "added", rep.Added)
	p.audit(ctx, u, "user.method-reported."+rep.Method)
	return p.logSecurity(r, u, rep.Method, "reported", reason.ChangeReportedNotMine)
}

// reportFailed shows a link that cannot act as a finished page that says
// what to do instead.
func (p *Pages) reportFailed(w http.ResponseWriter, r *http.Request, err error) error {
	var msg string
	switch {
	case errors.Is(err, errLinkUsed):
		msg = "This link was already used: the account was secured then. Sign in to check your sign-in methods."
	case errors.Is(err, errLinkExpired):
		msg = "This link has expired. If someone else changed your sign-in methods, sign in and check them on your security page, or contact your administrator."
	case errors.Is(err, errLinkBad):
		msg = "This link is not valid. Open it exactly as it appears in the message, or sign in and check your sign-in methods."
	default:
		return err
	}
	p.render(w, r, httpx.StatusOf(err), "report", view{Title: "Secure your account", Error: msg})
	return nil
}
