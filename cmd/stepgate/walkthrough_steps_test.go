package main

// walkStep is one numbered step of the README's "The demo, step by
// step", as TestBrowserWalkThrough performs it. TestReadmeWalkThrough
// holds the README to this list and the list to the README: a step, an
// address, a command or an expected output in one and not the other
// fails, so neither can change alone.
type walkStep struct {
	// Title is the step's bold title; the first entry, with no title,
	// is the text before step 1.
	Title string
	// URLs are the addresses the step gives, as written (port 8080).
	URLs []string
	// Commands are the step's command lines, as written.
	Commands []walkCommand
	// Cites are phrases of the step's text that the test proves.
	Cites []string
}

// walkCommand is a command line and the "# ..." lines the README shows
// under it: what it prints.
type walkCommand struct {
	Line    string
	Outputs []string
}

// walkSteps is the README's walk-through. The browser test reaches its
// addresses only through walkthrough.url and its commands only through
// walkthrough.command, which refuse anything not listed here, and
// fails when something listed here was never used.
var walkSteps = []walkStep{
	{
		URLs: []string{"http://localhost:8080", "http://bank.localhost:8080/"},
		Commands: []walkCommand{
			{Line: "go run ./cmd/stepgate demo"},
			{Line: "go run ./cmd/stepgate user tap bob --lifetime 1h --demo"},
		},
		Cites: []string{
			"alice's authenticator app secret and a temporary access pass for admin",
			"`alice` / `alice-demo-password`",
			"`bob` / `bob-demo-password`",
			"`admin` / `admin-demo-password`",
			"a password alone never adds or removes one",
		},
	},
	{
		Title: "Open the bank",
		URLs:  []string{"http://bank.localhost:8080/"},
		Cites: []string{"The gateway sends you to Stepgate to sign in."},
	},
	{
		Title: "Sign in as alice",
		Cites: []string{"`alice-demo-password`", "Stepgate first offers her a passkey", "choose *Not now*",
			"bank's accounts page, which says you are `alice` and that your `amr` is `pwd`"},
	},
	{
		Title:    "Make a transfer",
		Commands: []walkCommand{{Line: "go run ./cmd/stepgate user totp-code alice --demo"}},
		Cites: []string{
			"Click *Make a transfer*, enter an amount (`250.00`)",
			"`DE75 5121 0800 1245 1261 99`",
			"Stepgate asks for a code from alice's authenticator app",
			"*Transfer of 250.00 to DE75512108001245126199 done*, with `amr` `pwd, otp` and context `c2` met",
			"Another transfer within 10 minutes needs no new code",
		},
	},
	{
		Title: "Open Customers",
		Cites: []string{"the customer list opens at once"},
	},
	{
		Title: "Try Admin",
		URLs: []string{
			"http://localhost:8080/logout",
			"http://localhost:8080/account/security",
			"http://bank.localhost:8080/admin/",
		},
		Cites: []string{
			"As alice, Stepgate refuses: she does not hold the role `bank-admin`",
			"sign in as `admin` with `admin-demo-password`",
			"(*Not now* to the passkey offer: you add one",
			"*Add a passkey* is refused for now",
			"*Temporary access pass from your administrator*",
			"add a *Passkey or security key*",
			"Stepgate asks for the passkey, then shows the admin page.",
			"Stepgate asks again — for the passkey: retyping the password does not open it.",
			"refused transfers, customers and admin alike",
		},
	},
	{
		Title: "Public rates",
		URLs:  []string{"http://bank.localhost:8080/public/rates"},
		Cites: []string{"need no sign-in at all, in a private window too"},
	},
	{
		Title: "The same with curl and a bearer token",
		Commands: []walkCommand{
			{Line: "curl -i -H 'Accept: application/json' http://bank.localhost:8080/", Outputs: []string{
				"HTTP/1.1 401 Unauthorized",
				`Www-Authenticate: Bearer realm="stepgate", error="invalid_token", error_description="sign in first"`,
			}},
			{Line: `TOKEN=$(curl -s -u bank:bank-demo-client-secret-for-local-use-only -d grant_type=client_credentials http://localhost:8080/oauth2/token | sed -E 's/.*"access_token":"([^"]+)".*/\1/')`},
			{Line: `curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $TOKEN" http://bank.localhost:8080/`, Outputs: []string{"200"}},
			{Line: `curl -i -H "Authorization: Bearer $TOKEN" -d amount=250 -d to=DE75512108001245126199 http://bank.localhost:8080/transfers`, Outputs: []string{
				"HTTP/1.1 401 Unauthorized",
				`Www-Authenticate: Bearer realm="stepgate", error="insufficient_user_authentication", error_description="the authentication context c2 is required", acr_values="c2"`,
			}},
			{Line: "curl -i http://127.0.0.1:BANKPORT/"},
		},
		URLs: []string{
			"http://bank.localhost:8080/",
			"http://localhost:8080/oauth2/token",
			"http://bank.localhost:8080/transfers",
			"http://127.0.0.1:BANKPORT/",
		},
		Cites: []string{
			"answers 401, and so does the same request carrying `$TOKEN`",
		},
	},
	{
		Title:    "Ask for a role for an hour",
		Commands: []walkCommand{{Line: "go run ./cmd/stepgate user totp-code alice --demo"}},
		URLs: []string{
			"http://localhost:8080/account/roles",
			"http://localhost:8080/admin/elevations",
			"http://localhost:8080/account/security",
			"http://bank.localhost:8080/admin/",
			"http://localhost:8080/admin/signins",
		},
		Cites: []string{
			"(*Not now* to the passkey offer: she adds one below)",
			"write a justification (`INC-1234: payments stuck`) and *Ask for bank-admin* for 1 hour",
			"Stepgate asks for a code from her authenticator app",
			"*Confirm the request* sends it for approval",
			"*Approve* it",
			"a code from her app opens the registration, no pass needed; the one she just gave counts for 10 minutes",
			"asks for her passkey and opens",
			"at once with *End now* on her roles page",
			"the next visit to the admin page is refused, whatever she proves",
			"names the policy that refused it, `admin-pages-need-bank-admin`",
		},
	},
}
