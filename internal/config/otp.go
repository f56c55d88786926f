package config

import (
	"net"
	"net/mail"
	"net/url"
	"strings"
)

// OTP configures one-time codes by email and by text message: which
// sender delivers each, and the senders' settings.
type OTP struct {
	Email   OTPEmail   `yaml:"email"`
	SMS     OTPSMS     `yaml:"sms"`
	SMTP    OTPSMTP    `yaml:"smtp"`
	Webhook OTPWebhook `yaml:"webhook"`
}

// OTPEmail selects how email codes are sent.
type OTPEmail struct {
	// Sender is smtp, log (development: codes go to the log) or none
	// (the otp-email method is off).
	Sender string `yaml:"sender"`
}

// OTPSMS selects how text-message codes are sent.
type OTPSMS struct {
	// Sender is webhook, log (development) or none (otp-sms is off).
	Sender string `yaml:"sender"`
}

// OTPSMTP is the mail server for email codes. STARTTLS is required.
type OTPSMTP struct {
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	Username string `yaml:"username"`
	// Password is a secret: set it with STEPGATE_OTP_SMTP_PASSWORD.
	Password string `yaml:"password"`
	// From is the sender, like "Stepgate <sso@example.com>".
	From string `yaml:"from"`
	// InsecureLoopback allows a relay on this machine without STARTTLS.
	InsecureLoopback bool `yaml:"insecure_loopback"`
}

// OTPWebhook is the HTTPS endpoint that hands text-message codes to an
// SMS gateway, with a signed JSON POST.
type OTPWebhook struct {
	URL string `yaml:"url"`
	// Secret keys the request signature: set it with
	// STEPGATE_OTP_WEBHOOK_SECRET.
	Secret string `yaml:"secret"`
}

// defaultOTP writes codes to the log, so a fresh install works with
// nothing to set up; the server warns at start while it does.
func defaultOTP() OTP {
	return OTP{
		Email: OTPEmail{Sender: "log"},
		SMS:   OTPSMS{Sender: "log"},
		SMTP:  OTPSMTP{Port: 587},
	}
}

// minWebhookSecret matches otp.MinWebhookSecret.
const minWebhookSecret = 32

// DevelopmentSenders lists the keys that select the log sender, which
// writes codes to the log where anyone who reads it can use them. The
// server logs a warning for each at start.
func (o OTP) DevelopmentSenders() []string {
	var out []string
	if o.Email.Sender == "log" {
		out = append(out, "otp.email.sender")
	}
	if o.SMS.Sender == "log" {
		out = append(out, "otp.sms.sender")
	}
	return out
}

func (o OTP) validate(ps *problems) {
	switch o.Email.Sender {
	case "smtp":
		o.SMTP.validate(ps)
	case "log", "none":
	default:
		ps.add("otp.email.sender", "%s is not an email sender; use smtp, log (development only) or none", quote(o.Email.Sender))
	}
	switch o.SMS.Sender {
	case "webhook":
		o.Webhook.validate(ps)
	case "log", "none":
	default:
		ps.add("otp.sms.sender", "%s is not a text-message sender; use webhook, log (development only) or none", quote(o.SMS.Sender))
	}
}

func (s OTPSMTP) validate(ps *problems) {
	if s.Host == "" {
		ps.add("otp.smtp.host", "must be set when otp.email.sender is smtp; give the mail server's name, like smtp.example.com")
	}
	if s.Port < 1 || s.Port > 65535 {
		ps.add("otp.smtp.port", "must be from 1 to 65535 (got %d); 587 is the submission port", s.Port)
	}
	if s.InsecureLoopback && s.Host != "" && !isLoopbackHost(s.Host) {
		ps.add("otp.smtp.insecure_loopback", "is only allowed when otp.smtp.host is localhost, 127.0.0.1 or ::1 (it is %s); remove it and use a server that offers STARTTLS", quote(s.Host))
	}
	if s.Password != "" && s.Username == "" {
		ps.add("otp.smtp.username", "must be set when otp.smtp.password is; the password is sent with AUTH PLAIN under this name")
	}
	if s.From == "" {
		ps.add("otp.smtp.from", "must be set when otp.email.sender is smtp; write it like Stepgate <sso@example.com>")
	} else if _, err := mail.ParseAddress(s.From); err != nil || strings.ContainsAny(s.From, "\r\n") {
		ps.add("otp.smtp.from", "%s is not an email address; write it like Stepgate <sso@example.com>", quote(s.From))
	}
}

func (w OTPWebhook) validate(ps *problems) {
	u, err := url.Parse(w.URL)
	switch {
	case w.URL == "":
		ps.add("otp.webhook.url", "must be set when otp.sms.sender is webhook; write it like https://sms-gateway.example.com/send")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		ps.add("otp.webhook.url", "%s is not an absolute https URL; write it like https://sms-gateway.example.com/send", quote(w.URL))
	case u.User != nil:
		ps.add("otp.webhook.url", "must not contain a user name or password; the request signature authenticates Stepgate")
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		ps.add("otp.webhook.url", "%s uses plain http, which would expose codes on the network; use https (http is allowed for localhost only)", quote(w.URL))
	}
	// Never quote the secret.
	if len(w.Secret) < minWebhookSecret {
		ps.add("otp.webhook.secret", "is %d characters long; use at least %d random characters, e.g. the output of: openssl rand -base64 32 (set it with STEPGATE_OTP_WEBHOOK_SECRET)", len(w.Secret), minWebhookSecret)
	}
}

// isLoopbackHost is isLoopbackName plus the rest of 127.0.0.0/8.
func isLoopbackHost(host string) bool {
	if isLoopbackName(host) {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
