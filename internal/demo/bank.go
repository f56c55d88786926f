package demo

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/pkg/stepup"
)

//go:embed templates/*.html static/bank.css
var bankFiles embed.FS

// The bank believes only the gateway's signed X-Stepgate-Assertion,
// checked by the SDK (stepup.AssertionVerifier). The plain
// X-Stepgate-User and friends are convenient for apps that trust their
// network, but a request that reaches the bank's port some other way
// could carry them.
const assertionHeader = stepup.AssertionHeader

// BankOptions configure the demo bank.
type BankOptions struct {
	// Issuer is Stepgate's issuer: assertions must name it.
	Issuer string
	// JWKSURL is where Stepgate publishes its signing keys.
	JWKSURL string
	// Upstream is where the gateway reaches the bank (the route's to:
	// URL, http://127.0.0.1:PORT). An assertion is accepted only when its
	// audience is this origin and it authorizes the very request the
	// bank is serving there.
	Upstream string
	// PublicURL is the bank's address behind the gateway, shown to
	// anyone who reaches the bank directly.
	PublicURL string
	Log       *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Bank is the demo's protected application: a small server-rendered
// bank that knows its users only from the gateway's signed assertions.
type Bank struct {
	opts     BankOptions
	verifier *stepup.AssertionVerifier
	pages    map[string]*template.Template
	// formKey signs the transfer form's anti-forgery token.
	formKey []byte
	mux     *http.ServeMux
}

// NewBank returns the bank.
func NewBank(o BankOptions) (*Bank, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	origin := origin(o.Upstream)
	v, err := stepup.NewAssertionVerifier(o.Issuer, stepup.WithAudience(origin), stepup.WithOrigin(origin),
		stepup.WithJWKSURL(o.JWKSURL), stepup.WithClock(o.Now), stepup.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	if err != nil {
		return nil, fmt.Errorf("bank upstream %q: %w", o.Upstream, err)
	}
	b := &Bank{
		opts:     o,
		verifier: v,
		pages:    map[string]*template.Template{},
		formKey:  make([]byte, 32),
	}
	_, _ = rand.Read(b.formKey)
	// Signing out is Stepgate's: its GET /logout asks to confirm (a link
	// on another site cannot sign anyone out), ends the session, and
	// leads to the sign-in page, from which the bank is one click away.
	signOut := strings.TrimSuffix(o.Issuer, "/") + "/logout"
	roles := strings.TrimSuffix(o.Issuer, "/") + "/account/roles"
	funcs := template.FuncMap{"join": strings.Join, "authTime": authTime(o.Now), "signOutURL": func() string { return signOut },
		"rolesURL": func() string { return roles }}
	for _, name := range []string{"accounts", "transfer", "transferred", "customers", "admin", "rates", "refused"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(bankFiles, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("bank template %s: %w", name, err)
		}
		b.pages[name] = t
	}
	b.mux = http.NewServeMux()
	b.mux.HandleFunc("GET /public/rates", b.rates)
	b.mux.HandleFunc("GET /public/bank.css", b.css)
	b.mux.Handle("GET /{$}", b.signedIn(b.accounts))
	b.mux.Handle("GET /transfers/new", b.signedIn(b.transferForm))
	b.mux.Handle("POST /transfers", b.signedIn(b.transfer))
	// A reload of the confirmation, which the gateway shows at the
	// form's address, is a GET of it: back to the form, nothing sent.
	b.mux.Handle("GET /transfers", b.signedIn(func(w http.ResponseWriter, r *http.Request, _ *Identity) {
		http.Redirect(w, r, "/transfers/new", http.StatusSeeOther)
	}))
	// With and without the slash: a redirect from one to the other would
	// cost a second single-use proof on /admin.
	b.mux.Handle("GET /customers/", b.signedIn(b.customers))
	b.mux.Handle("GET /customers", b.signedIn(b.customers))
	b.mux.Handle("GET /admin/", b.signedIn(b.admin))
	b.mux.Handle("GET /admin", b.signedIn(b.admin))
	// Anything else is refused without an assertion, like every page,
	// so the bank's port tells a stranger nothing about what exists.
	b.mux.Handle("/", b.signedIn(func(w http.ResponseWriter, r *http.Request, _ *Identity) {
		http.NotFound(w, r)
	}))
	return b, nil
}

// ServeHTTP serves the bank with headers that keep its pages in their
// own window and out of caches: they show personal data.
func (b *Bank) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// form-action names Stepgate too: Chrome applies it to every redirect
	// after a form post, and a transfer that needs a step-up is
	// redirected to Stepgate's step-up page.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self' "+origin(b.opts.Issuer))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	b.mux.ServeHTTP(w, r)
}

func origin(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Scheme + "://" + p.Host
}

// Identity is who the gateway says is asking, from a verified assertion.
type Identity = stepup.Assertion

// Verify checks the gateway's assertion on r (see
// stepup.AssertionVerifier.Verify): Stepgate's signature with a pinned
// algorithm and the assertion's own typ, issued for the bank's origin,
// current, and authorizing exactly r's method and path. A token of
// another kind, an assertion for another application, and one the
// gateway issued for another request are all refused.
func (b *Bank) Verify(r *http.Request) (*Identity, error) {
	return b.verifier.VerifyRequest(r)
}

// signedIn serves h only with a verified identity; anything else gets a
// page that says where the bank is really served.
func (b *Bank) signedIn(h func(http.ResponseWriter, *http.Request, *Identity)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := b.Verify(r)
		if err != nil {
			b.opts.Log.InfoContext(r.Context(), "bank refused a request", "path", r.URL.Path, "err", err)
			b.render(w, http.StatusUnauthorized, "refused", page{Title: "Not through the gateway", Data: b.opts.PublicURL})
			return
		}
		h(w, r, id)
	})
}

// page is what every template gets.
type page struct {
	Title string
	// Rule says which gateway rule and policy protect the page.
	Rule string
	ID   *Identity
	Data any
}

func (b *Bank) render(w http.ResponseWriter, status int, name string, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := b.pages[name].ExecuteTemplate(w, "layout", p); err != nil {
		b.opts.Log.Error("render bank page", "page", name, "err", err)
	}
}

const defaultRule = "No rule matches this path, so the route's default applies: any signed-in user."

type account struct{ Name, IBAN, Balance string }

func (b *Bank) accounts(w http.ResponseWriter, _ *http.Request, id *Identity) {
	b.render(w, http.StatusOK, "accounts", page{Title: "Accounts", Rule: defaultRule, ID: id, Data: []account{
		{"Current account", "DE89 3704 0044 0532 0130 00", "4,210.55 EUR"},
		{"Savings", "DE02 1203 0000 0000 2020 51", "18,000.00 EUR"},
	}})
}

// transferData fills the transfer form and its result.
type transferData struct {
	Amount, To, Token, Error string
}

const transferRule = "POST /transfers asks for context c2 (High-value transaction). Policy transfers-need-fresh-mfa says what that takes: a second factor from the last 10 minutes."

func (b *Bank) transferForm(w http.ResponseWriter, _ *http.Request, id *Identity) {
	b.render(w, http.StatusOK, "transfer", page{Title: "New transfer", ID: id,
		Rule: defaultRule + " Sending the form is another matter: " + transferRule,
		Data: transferData{Token: b.formToken(id)}})
}

var (
	amountPattern = regexp.MustCompile(`^[0-9]{1,9}(\.[0-9]{1,2})?$`)
	ibanPattern   = regexp.MustCompile(`^[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}$`)
)

func (b *Bank) transfer(w http.ResponseWriter, r *http.Request, id *Identity) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read", http.StatusBadRequest)
		return
	}
	d := transferData{
		Amount: strings.TrimSpace(r.PostForm.Get("amount")),
		To:     strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(r.PostForm.Get("to")), " ", "")),
		Token:  b.formToken(id),
	}
	// The form token stops another site from making a signed-in
	// browser post a transfer. An API client sends a bearer token, which
	// no other site can make a browser attach, and has no form.
	fromAPI := strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "bearer ")
	switch {
	case !fromAPI && !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(d.Token)):
		d.Error = "This form has expired. Fill it in again."
	case !amountPattern.MatchString(d.Amount) || strings.Trim(d.Amount, "0.") == "":
		d.Error = "Enter an amount like 250 or 250.00."
	case !ibanPattern.MatchString(d.To):
		d.Error = "Enter the recipient's IBAN, like DE75 5121 0800 1245 1261 99."
	}
	if d.Error != "" {
		b.render(w, http.StatusBadRequest, "transfer", page{Title: "New transfer", Rule: transferRule, ID: id, Data: d})
		return
	}
	b.opts.Log.InfoContext(r.Context(), "demo transfer", "user", id.Username, "amount", d.Amount, "to", d.To, "acrs", id.ACRs)
	b.render(w, http.StatusOK, "transferred", page{Title: "Transfer done", Rule: transferRule, ID: id, Data: d})
}

// formToken binds the transfer form to the signed-in user.
func (b *Bank) formToken(id *Identity) string {
	m := hmac.New(sha256.New, b.formKey)
	m.Write([]byte("transfer|" + id.Subject))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

type customer struct{ Name, Email, Phone, IBAN string }

func (b *Bank) customers(w http.ResponseWriter, _ *http.Request, id *Identity) {
	b.render(w, http.StatusOK, "customers", page{Title: "Customers", ID: id,
		Rule: "/customers/* asks for context c1 (Read PII). Policy pii-needs-mfa says what that takes: a second factor at any time in the session.",
		Data: []customer{
			{"Carol Chen", "carol@mail.example", "+49 30 5550 1234", "DE75 5121 0800 1245 1261 99"},
			{"Dmitri Dahl", "dmitri@mail.example", "+46 8 5550 9876", "SE45 5000 0000 0583 9825 7466"},
			{"Erin Evans", "erin@mail.example", "+44 20 7946 0321", "GB33 BUKB 2020 1555 5555 55"},
		}})
}

func (b *Bank) admin(w http.ResponseWriter, _ *http.Request, id *Identity) {
	p := page{Title: "Administration", ID: id,
		Rule: "/admin/* asks for context c3 (Admin action) with single-use elevation. Policy admin-actions-need-a-passkey says what that takes: a phishing-resistant proof (a passkey); policy admin-pages-need-bank-admin refuses anyone without the role " + BankAdminRole + ", held all the time or activated for a while. Single use: the proof authorizes this one request; reloading asks again. The bank itself also checks the role in the gateway's assertion."}
	// The bank's own check, behind the gateway's: the role as the signed
	// assertion carries it, standing or activated.
	allowed := slices.Contains(id.Roles, BankAdminRole)
	p.Data = struct{ Forbidden bool }{!allowed}
	if !allowed {
		b.render(w, http.StatusForbidden, "admin", p)
		return
	}
	b.render(w, http.StatusOK, "admin", p)
}

type rate struct{ Pair, Rate string }

func (b *Bank) rates(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Exchange rates",
		Rule: "/public/* is allowed anonymously: no sign-in, and the gateway sends no identity.",
		Data: []rate{{"EUR / USD", "1.0842"}, {"EUR / GBP", "0.8571"}, {"EUR / CHF", "0.9410"}, {"EUR / SEK", "11.2315"}}}
	// Anonymous pages get no identity from the gateway; one that arrives
	// anyway is still checked, never shown unverified.
	if id, err := b.Verify(r); err == nil {
		p.ID = id
	}
	b.render(w, http.StatusOK, "rates", p)
}

func (b *Bank) css(w http.ResponseWriter, _ *http.Request) {
	css, _ := bankFiles.ReadFile("static/bank.css")
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	_, _ = w.Write(css)
}

// authTime renders auth_time with its age, so the 10-minute window of
// the transfer policy can be watched running out.
func authTime(now func() time.Time) func(time.Time) string {
	return func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339) + " (" + now().Sub(t).Round(time.Second).String() + " ago)"
	}
}
