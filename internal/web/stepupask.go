package web

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// StepUpSource is a component that sends users to the step-up page (the
// gateway, the OIDC provider). Given the page's return address, it
// describes the step-up from its own records, deciding it again for the
// user's session; ok is false when the address is not one of its own.
type StepUpSource interface {
	StepUpFor(r *http.Request, u store.User, s store.Session, returnTo string) (ask access.StepUp, ok bool)
}

// askView is what the step-up page says about the request that asked.
type askView struct {
	App    string
	Action string // the authentication contexts' display names
	// Why are the reasons, in words, one sentence each.
	Why []string
	// Met: the session already has what the request needs.
	Met bool
	// Blocked: no proof opens it.
	Blocked bool
	// None says what to do when no method of the user's can give the
	// proof; nil when one can.
	None *noneView
}

// noneView tells a user without a usable method how to get one.
type noneView struct {
	Need string // the methods that would do, in words: "a passkey or security key"
	// Unavailable: no method this server offers can give it (a managed
	// device, a method that is not turned on).
	Unavailable bool
	// Steps are what to do, each with a working link where there is one.
	Steps []step
}

type step struct {
	Text, LinkText, URL string
}

// describeStepUp asks the sources what returnTo is for. known is false
// when none recognises it: the page then falls back on the methods= hint
// of its address, narrowed to the user's methods.
func (p *Pages) describeStepUp(r *http.Request, u store.User, s store.Session, returnTo string) (access.StepUp, bool) {
	for _, src := range p.StepUps {
		if ask, ok := src.StepUpFor(r, u, s, returnTo); ok {
			return ask, true
		}
	}
	return access.StepUp{}, false
}

// fillAsk describes on v the step-up v.ReturnTo continues, and returns
// the methods to offer: the user's methods (have) that can meet it, or
// have narrowed by hint when no sender knows the address.
func (p *Pages) fillAsk(r *http.Request, v *view, have []string, creds []store.Credential, hint string) []string {
	if ask, known := p.describeStepUp(r, *v.User, *v.Session, v.ReturnTo); known {
		offered, usable := askMethods(ask, have)
		v.Ask = p.askView(r, *v.User, *v.Session, creds, ask, usable)
		return offered
	}
	if names := strings.FieldsFunc(hint, func(r rune) bool { return r == ',' || r == ' ' }); len(names) > 0 {
		return slices.DeleteFunc(slices.Clone(have), func(m string) bool { return !slices.Contains(names, m) })
	}
	return have
}

// askMethods are the user's methods (have) that can meet what ask
// misses, computed here from the decision rather than taken from the
// page's address: a methods= hint edited to say "password" does not put
// the password on a passkey rule's page. ok is false when none can.
func askMethods(ask access.StepUp, have []string) ([]string, bool) {
	if ask.Blocked {
		return nil, false
	}
	v, _ := access.Challenge(ask.Missing, "", func() ([]string, error) { return have, nil })
	return v.Methods, v.Outcome == policy.OutcomeChallenge
}

// askView puts the facts of ask into words for the page.
func (p *Pages) askView(r *http.Request, u store.User, s store.Session, creds []store.Credential, ask access.StepUp, usable bool) *askView {
	v := &askView{App: ask.App, Blocked: ask.Blocked}
	names := make([]string, len(ask.Contexts))
	for i, c := range ask.Contexts {
		names[i] = cmp.Or(c.Name, c.ID)
	}
	v.Action = strings.Join(names, ", ")
	need := access.WithoutPasswordChange(ask.Missing)
	switch {
	case ask.Blocked:
		return v
	case len(need) == 0:
		v.Met = true
		return v
	}
	v.Why = whySentences(ask, need, v.Action != "")
	if !usable {
		v.None = p.noneView(r, u, s, creds, need)
	}
	return v
}

// whySentences says why the proof is asked for: the re-ask first (why
// an earlier proof does not count), then what the policies ask for.
func whySentences(ask access.StepUp, need []policy.Requirement, hasAction bool) []string {
	var out []string
	switch ask.Reask {
	case access.ReaskSingleUse:
		out = append(out, "This page needs a proof made just now (single use): each proof opens it once, so the one you gave before does not count.")
	case access.ReaskMaxAge:
		if ask.MaxAge >= time.Second {
			out = append(out, "Your last sign-in is older than "+humanDuration(ask.MaxAge)+", the most this page accepts.")
			break
		}
		out = append(out, "The application asked for a sign-in made just now.")
	case access.ReaskLogin:
		out = append(out, "The application asked you to sign in again.")
	}
	what := "this application"
	if hasAction {
		what = "this action"
	}
	for _, rq := range need {
		alts := make([]string, 0, len(rq.AnyOf))
		for _, n := range rq.AnyOf {
			alts = append(alts, needWords(n))
		}
		out = append(out, "Your organisation asks for "+strings.Join(alts, " or ")+" for "+what+".")
	}
	return out
}

// needWords says one way of meeting a requirement: "a second factor
// from the last 10 minutes".
func needWords(n policy.Need) string {
	var s string
	switch n.Kind {
	case policy.KindStrength:
		switch n.Strength {
		case strength.MFA:
			s = "a second factor"
		case strength.PhishingResistant:
			s = "a phishing-resistant proof (a passkey or security key)"
		case strength.Passwordless:
			s = "a sign-in without a password"
		case strength.SingleFactor:
			s = "a new sign-in"
		default:
			s = "a proof of the “" + n.Strength + "” strength"
		}
	case policy.KindCompliantDevice:
		return "a device your organisation manages"
	case policy.KindTermsOfUse:
		return "your acceptance of the terms of use"
	default:
		return "an approval"
	}
	switch {
	case n.EveryTime:
		s += ", every time"
	case n.MaxAge > 0:
		s += " from the last " + humanDuration(time.Duration(n.MaxAge))
	}
	return s
}

// humanDuration writes 10m as "10 minutes" and 1h30m as "1 hour 30
// minutes".
func humanDuration(d time.Duration) string {
	units := []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}, {time.Second, "second"}}
	var parts []string
	for _, u := range units {
		if n := d / u.d; n > 0 {
			part := strconv.FormatInt(int64(n), 10) + " " + u.name
			if n > 1 {
				part += "s"
			}
			parts = append(parts, part)
			d -= n * u.d
		}
	}
	if len(parts) == 0 {
		return "0 seconds"
	}
	return strings.Join(parts, " ")
}

// methodHint says where the proof of method comes from, naming the
// user's credentials of that kind and when they were added: "Get the
// code from the authenticator app you added on 2 Dec."
func (p *Pages) methodHint(method string, creds []store.Credential) string {
	if method == methodPassword {
		return "The password of your account."
	}
	mine := slices.DeleteFunc(slices.Clone(creds), func(c store.Credential) bool { return c.Type != method })
	if len(mine) == 0 {
		return ""
	}
	slices.SortFunc(mine, func(a, b store.Credential) int { return a.CreatedAt.Compare(b.CreatedAt) })
	now, label := p.Now(), p.label(method)
	verb, one, many := methodThing(method, label)
	if len(mine) == 1 {
		return verb + " the " + one + " you added on " + shortDate(mine[0].CreatedAt, now) + nameSuffix(mine[0], label) + "."
	}
	each := make([]string, len(mine))
	for i, c := range mine {
		each[i] = "added on " + shortDate(c.CreatedAt, now) + nameSuffix(c, label)
	}
	return verb + " one of the " + many + " you registered: " + joinAnd(each) + "."
}

// nameSuffix names a credential after its date, when the user named it.
func nameSuffix(c store.Credential, label string) string {
	// A default name ("Passkey") says nothing the label does not.
	if c.Name == "" || strings.Contains(strings.ToLower(label), strings.ToLower(c.Name)) {
		return ""
	}
	return " (“" + c.Name + "”)"
}

// methodThing says how the user gets a proof of method and from what,
// in the singular and the plural.
func methodThing(method, label string) (verb, one, many string) {
	switch method {
	case "totp":
		return "Get the code from", "authenticator app", "authenticator apps"
	case "webauthn":
		return "Use", "passkey or security key", "passkeys and security keys"
	case "otp-sms":
		return "We send a code by text message to", "phone number", "phone numbers"
	case "otp-email":
		return "We send a code to", "email address", "email addresses"
	case "push":
		return "Approve the request on", "device", "devices"
	}
	l := lowerFirst(label)
	return "Use", l, l
}

func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 || len(s) > n && unicode.IsUpper(rune(s[n])) {
		return s // an acronym: "PIN", "SMS code"
	}
	return string(unicode.ToLower(r)) + s[n:]
}

// shortDate writes a day the way people say it: "2 Dec" this year,
// "2 Dec 2029" another. Dates are in UTC, the server's only zone, and
// "this year" is the injected clock's.
func shortDate(t, now time.Time) string {
	t, now = t.UTC(), now.UTC()
	if t.Year() == now.Year() {
		return t.Format("2 Jan")
	}
	return t.Format("2 Jan 2006")
}

func joinAnd(parts []string) string {
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// noneView says what a user whose methods cannot give the proof can do,
// following the rules of registration (addVerdict): add a method that
// would, on the security page, after a fresh proof where the user has a
// method, with a temporary access pass where they have only a password,
// or right away within the registration window; or ask an administrator.
func (p *Pages) noneView(r *http.Request, u store.User, s store.Session, creds []store.Credential, need []policy.Requirement) *noneView {
	var all []string
	for _, m := range p.Methods.All() {
		if m.Name() != methodRecovery {
			all = append(all, m.Name())
		}
	}
	all = append(all, methodPassword)
	would, ok := policy.StepUpMethods(need, all)
	would = slices.DeleteFunc(would, func(m string) bool { return m == methodPassword })
	nv := &noneView{}
	admin := step{Text: "Or ask your administrator for help."}
	if !ok || len(would) == 0 {
		nv.Need, nv.Unavailable = joinOr(needTexts(need)), true
		nv.Steps = []step{{Text: "Ask your administrator: only they can change what this needs or turn on a method that gives it."}}
		return nv
	}
	labels := make([]string, len(would))
	for i, m := range would {
		labels[i] = lowerArticle(p.label(m))
	}
	nv.Need = joinOr(labels)
	add := "/account/security/add?method=" + url.QueryEscape(would[0])
	gate, err := p.addVerdict(r, u, s, creds, would[0])
	switch {
	case err != nil:
		p.Log.ErrorContext(r.Context(), "check the registration of a method", "err", err)
		nv.Steps = append(nv.Steps, step{Text: "Add one on your security page.", LinkText: "Open your security page", URL: "/account/security"})
	case gate.gate == gateOpen:
		nv.Steps = append(nv.Steps, step{Text: "You can add one now.", LinkText: "Add " + labels[0], URL: add})
	case gate.gate == gateStepUp:
		have := make([]string, len(gate.methods))
		for i, m := range gate.methods {
			have[i] = lowerArticle(p.label(m))
		}
		nv.Steps = append(nv.Steps, step{Text: "Add one on your security page. It first asks you to confirm it's you with " + joinOr(have) + ", as every change of your sign-in methods does.",
			LinkText: "Add " + labels[0], URL: add})
	default:
		text := "Your account has no sign-in method besides the password, so adding one needs a temporary access pass: ask your administrator for one, then enter it on your security page."
		if len(creds) > 0 {
			text = "Adding one needs a temporary access pass from your administrator (or one of your recovery codes): enter it on your security page."
		}
		if p.Passes == nil {
			text = "Adding one needs your administrator's help."
		}
		nv.Steps = append(nv.Steps, step{Text: text, LinkText: "Open your security page", URL: "/account/security"})
	}
	nv.Steps = append(nv.Steps, admin)
	return nv
}

func needTexts(need []policy.Requirement) []string {
	var out []string
	for _, rq := range need {
		for _, n := range rq.AnyOf {
			out = append(out, needWords(n))
		}
	}
	return out
}

func joinOr(parts []string) string {
	if len(parts) < 2 {
		return strings.Join(parts, "")
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " or " + parts[len(parts)-1]
}

// lowerArticle writes a method's label inside a sentence: "an
// authenticator app", "a passkey or security key".
func lowerArticle(label string) string {
	l := lowerFirst(label)
	switch {
	case strings.HasPrefix(l, "code "), strings.HasPrefix(l, "approval "):
		return l
	case strings.ContainsRune("aeiou", rune(l[0])):
		return "an " + l
	}
	return "a " + l
}
