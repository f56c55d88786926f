package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/httpx"
)

// usersView is the users page's data.
type usersView struct {
	Query string
	Users []admin.UserSummary
	// Next links to the following page; empty on the last.
	Next string
}

// users lists a page of users, filtered by the search box.
func (c *Console) users(w http.ResponseWriter, r *http.Request, who *caller) error {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	page, err := c.Service.Users(r.Context(), q, r.URL.Query().Get("after"), 0)
	if err != nil {
		return err
	}
	v := usersView{Query: q, Users: page.Users}
	if page.Next != "" {
		v.Next = "/admin/users?" + url.Values{"q": {q}, "after": {page.Next}}.Encode()
	}
	c.render(w, r, who, http.StatusOK, "users", view{Title: "Users", Section: "users", Data: v})
	return nil
}

// userView is a user's page data.
type userView struct {
	admin.UserDetail
	// Self: the page is the administrator's own account.
	Self bool
	// SignIns links to the user's entries in the sign-in log.
	SignIns string
	// Issued is a temporary access pass just issued: shown on this one
	// answer, never again (it is stored hashed).
	Issued *admin.IssuedPass
}

// user shows a user's methods, sessions and risk, with the actions.
func (c *Console) user(w http.ResponseWriter, r *http.Request, who *caller) error {
	return c.showUser(w, r, who, http.StatusOK, "")
}

func (c *Console) showUser(w http.ResponseWriter, r *http.Request, who *caller, status int, problem string) error {
	return c.showUserWith(w, r, who, status, problem, nil)
}

func (c *Console) showUserWith(w http.ResponseWriter, r *http.Request, who *caller, status int, problem string, issued *admin.IssuedPass) error {
	d, err := c.Service.User(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	v := userView{UserDetail: d, Self: d.ID == who.user.ID, SignIns: "/admin/signins?" + url.Values{"user": {d.Username}}.Encode(), Issued: issued}
	c.render(w, r, who, status, "user", view{Title: "User " + d.Username, Section: "users", Notice: noticeOf(r), Error: problem, Data: v})
	return nil
}

// userAction runs one of the user page's actions after its confirmation
// box, and comes back to the page with a notice.
func (c *Console) userAction(w http.ResponseWriter, r *http.Request, who *caller, notice string, act func(reason, name string) error) error {
	name := r.PathValue("name")
	if r.PostFormValue("confirm") != "yes" {
		return c.showUser(w, r, who, http.StatusBadRequest, "Tick the confirmation box of the action you mean; nothing was changed.")
	}
	err := act(r.PostFormValue("reason"), name)
	if ae := adminError(err); ae != nil && ae.Kind != admin.NotFound {
		return c.showUser(w, r, who, httpx.StatusOf(ae), ae.Error())
	}
	if err != nil {
		return err
	}
	return redirect(withNotice("/admin/users/"+url.PathEscape(name), notice))
}

func (c *Console) revokeSessions(w http.ResponseWriter, r *http.Request, who *caller) error {
	return c.userAction(w, r, who, "revoked", func(reason, name string) error {
		return c.Service.RevokeSessions(r.Context(), who.actor(), reason, name)
	})
}

func (c *Console) resetMFA(w http.ResponseWriter, r *http.Request, who *caller) error {
	return c.userAction(w, r, who, "mfa-reset", func(reason, name string) error {
		_, err := c.Service.ResetMFA(r.Context(), who.actor(), reason, name)
		return err
	})
}

// setRisk confirms a user compromised (action=confirm-compromised) or
// dismisses their risk (action=dismiss).
func (c *Console) setRisk(w http.ResponseWriter, r *http.Request, who *caller) error {
	compromised := r.PostFormValue("action") == "confirm-compromised"
	if !compromised && r.PostFormValue("action") != "dismiss" {
		return c.showUser(w, r, who, http.StatusBadRequest, "Choose to confirm the user compromised or to dismiss their risk.")
	}
	notice := "risk-dismissed"
	if compromised {
		notice = "risk-confirmed"
	}
	return c.userAction(w, r, who, notice, func(reason, name string) error {
		return c.Service.SetRisk(r.Context(), who.actor(), reason, name, compromised)
	})
}

// setDisabled disables (disabled=true) or enables a user. An
// administrator cannot disable themselves: nobody might be left to undo
// it.
func (c *Console) setDisabled(w http.ResponseWriter, r *http.Request, who *caller) error {
	disabled := r.PostFormValue("disabled") == "true"
	notice := "enabled"
	if disabled {
		notice = "disabled"
	}
	return c.userAction(w, r, who, notice, func(reason, name string) error {
		if disabled && (name == who.user.Username || name == who.user.ID) {
			return &admin.Error{Kind: admin.Invalid, Message: "you cannot disable your own account here; ask another administrator, so someone can still undo it"}
		}
		return c.Service.SetDisabled(r.Context(), who.actor(), reason, name, disabled)
	})
}

// issuePass gives the user a temporary access pass and shows it on this
// answer only: it is stored hashed, so it cannot be shown again.
func (c *Console) issuePass(w http.ResponseWriter, r *http.Request, who *caller) error {
	if r.PostFormValue("confirm") != "yes" {
		return c.showUser(w, r, who, http.StatusBadRequest, "Tick the confirmation box of the action you mean; nothing was changed.")
	}
	lifetime, err := time.ParseDuration(strings.TrimSpace(r.PostFormValue("lifetime")))
	if err != nil {
		return c.showUser(w, r, who, http.StatusBadRequest, "Give the pass a lifetime from 10m to 168h, like 1h; nothing was changed.")
	}
	p, err := c.Service.IssuePass(r.Context(), who.actor(), r.PostFormValue("reason"), r.PathValue("name"), lifetime, r.PostFormValue("once") == "yes")
	if ae := adminError(err); ae != nil && ae.Kind != admin.NotFound {
		return c.showUser(w, r, who, httpx.StatusOf(ae), ae.Error())
	}
	if err != nil {
		return err
	}
	return c.showUserWith(w, r, who, http.StatusOK, "", &p)
}

func (c *Console) revokePass(w http.ResponseWriter, r *http.Request, who *caller) error {
	return c.userAction(w, r, who, "tap-revoked", func(reason, name string) error {
		return c.Service.RevokePass(r.Context(), who.actor(), reason, name)
	})
}
