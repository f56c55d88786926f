package config

import "time"

// Registration configures what it takes to add or remove a sign-in
// method (security info). It is on by default; a
// register-security-info policy can only ask for more.
type Registration struct {
	// Freshness is how recent the proof with an existing method must be
	// before a user adds or removes a method.
	Freshness Duration `yaml:"freshness"`
	// PhishingResistant demands that proof be phishing-resistant (a
	// passkey or security key); a temporary access pass still works.
	PhishingResistant bool `yaml:"phishing_resistant"`
	// Window is how long after an account was created its user may
	// register a first method with a password alone; 0 turns it off, so
	// only a temporary access pass opens the first registration.
	Window Duration `yaml:"window"`
	// WindowMaxRisk is the highest sign-in and user risk at which the
	// window applies: none (default), low, medium, or any (no risk
	// condition).
	WindowMaxRisk string `yaml:"window_max_risk"`
	// Notify mails the user at every change of their methods, with a
	// "this wasn't me" link, through otp.email's sender.
	Notify bool `yaml:"notify"`
	// ReportLinkLifetime is how long a "this wasn't me" link works.
	ReportLinkLifetime Duration `yaml:"report_link_lifetime"`
	// Campaign offers users, right after they sign in, to register a
	// method that would get them through a policy they cannot meet yet.
	Campaign RegistrationCampaign `yaml:"campaign"`
}

// RegistrationCampaign is the offer after sign-in to register a method
// that a policy in the user's scope needs and they lack.
type RegistrationCampaign struct {
	// Enabled turns the offer on.
	Enabled bool `yaml:"enabled"`
	// Snoozes is how many times a user may answer "Not now" before the
	// offer stops.
	Snoozes int `yaml:"snoozes"`
}

func defaultRegistration() Registration {
	return Registration{
		Freshness: Duration(10 * time.Minute), Window: Duration(14 * 24 * time.Hour), WindowMaxRisk: "none",
		Notify: true, ReportLinkLifetime: Duration(7 * 24 * time.Hour),
		Campaign: RegistrationCampaign{Snoozes: 3},
	}
}

func (r Registration) validate(ps *problems) {
	if r.Freshness < Duration(time.Minute) || r.Freshness > Duration(time.Hour) {
		ps.add("registration.freshness", "must be from 1m to 1h (got %s); the default is 10m", r.Freshness)
	}
	if r.Window < 0 {
		ps.add("registration.window", "must be 0 (off) or a duration like 336h (got %s)", r.Window)
	}
	switch r.WindowMaxRisk {
	case "none", "low", "medium", "any":
	default:
		ps.add("registration.window_max_risk", "must be none, low, medium or any (got %q)", r.WindowMaxRisk)
	}
	if r.ReportLinkLifetime < Duration(time.Hour) || r.ReportLinkLifetime > Duration(30*24*time.Hour) {
		ps.add("registration.report_link_lifetime", "must be from 1h to 720h (got %s); the default is 168h", r.ReportLinkLifetime)
	}
	if r.Campaign.Snoozes < 1 || r.Campaign.Snoozes > 100 {
		ps.add("registration.campaign.snoozes", "must be from 1 to 100 (got %d); it is how many times a user may answer \"Not now\" before the offer stops; the default is 3", r.Campaign.Snoozes)
	}
}
