package config

import (
	"slices"
	"strings"
	"testing"
)

func TestOTP(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("s", 32)
	smtp := func(c *Config) {
		c.OTP.Email.Sender = "smtp"
		c.OTP.SMTP = OTPSMTP{Host: "smtp.example.com", Port: 587, Username: "sso", Password: "pw", From: "Stepgate <sso@example.com>"}
	}
	webhook := func(c *Config) {
		c.OTP.SMS.Sender = "webhook"
		c.OTP.Webhook = OTPWebhook{URL: "https://sms.example.com/send", Secret: secret}
	}
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string // problem paths
		wantIn string   // in the first message
	}{
		{name: "ok/defaults-log", mutate: func(*Config) {}},
		{name: "ok/none", mutate: func(c *Config) { c.OTP.Email.Sender, c.OTP.SMS.Sender = "none", "none" }},
		{name: "ok/smtp", mutate: smtp},
		{name: "ok/smtp-insecure-loopback", mutate: func(c *Config) {
			smtp(c)
			c.OTP.SMTP.Host, c.OTP.SMTP.InsecureLoopback = "127.0.0.1", true
		}},
		{name: "ok/webhook", mutate: webhook},
		{name: "ok/webhook-http-localhost", mutate: func(c *Config) { webhook(c); c.OTP.Webhook.URL = "http://localhost:9000/send" }},
		{name: "fail/email-sender", mutate: func(c *Config) { c.OTP.Email.Sender = "sendgrid" }, want: []string{"otp.email.sender"}, wantIn: "use smtp, log"},
		{name: "fail/sms-sender", mutate: func(c *Config) { c.OTP.SMS.Sender = "twilio" }, want: []string{"otp.sms.sender"}, wantIn: "use webhook, log"},
		{name: "fail/smtp-empty", mutate: func(c *Config) { c.OTP.Email.Sender = "smtp" }, want: []string{"otp.smtp.host", "otp.smtp.from"}, wantIn: "smtp.example.com"},
		{name: "fail/smtp-insecure-remote", mutate: func(c *Config) { smtp(c); c.OTP.SMTP.InsecureLoopback = true }, want: []string{"otp.smtp.insecure_loopback"}, wantIn: "STARTTLS"},
		{name: "fail/smtp-port", mutate: func(c *Config) { smtp(c); c.OTP.SMTP.Port = 0 }, want: []string{"otp.smtp.port"}, wantIn: "587"},
		{name: "fail/smtp-password-alone", mutate: func(c *Config) { smtp(c); c.OTP.SMTP.Username = "" }, want: []string{"otp.smtp.username"}},
		{name: "fail/smtp-from", mutate: func(c *Config) { smtp(c); c.OTP.SMTP.From = "nobody" }, want: []string{"otp.smtp.from"}, wantIn: "Stepgate <sso@example.com>"},
		{name: "fail/webhook-empty", mutate: func(c *Config) { c.OTP.SMS.Sender = "webhook" }, want: []string{"otp.webhook.url", "otp.webhook.secret"}},
		{name: "fail/webhook-plain-http", mutate: func(c *Config) { webhook(c); c.OTP.Webhook.URL = "http://sms.example.com/send" }, want: []string{"otp.webhook.url"}, wantIn: "use https"},
		{name: "fail/webhook-short-secret", mutate: func(c *Config) { webhook(c); c.OTP.Webhook.Secret = "hunter2" }, want: []string{"otp.webhook.secret"}, wantIn: "openssl rand"},
		{name: "ok/unused-smtp-settings-ignored", mutate: func(c *Config) { c.OTP.SMTP.InsecureLoopback = true; c.OTP.SMTP.Host = "smtp.example.com" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tc.mutate(&c)
			ps := c.Validate()
			var paths []string
			for _, p := range ps {
				paths = append(paths, p.Path)
			}
			if !slices.Equal(paths, tc.want) {
				t.Fatalf("problems = %v, want paths %v", ps, tc.want)
			}
			if tc.wantIn != "" && !strings.Contains(ps[0].Message, tc.wantIn) {
				t.Errorf("message %q does not contain %q", ps[0].Message, tc.wantIn)
			}
			for _, p := range ps {
				if strings.Contains(p.Message, "hunter2") {
					t.Errorf("a secret was quoted: %q", p.Message)
				}
			}
		})
	}
}

func TestDevelopmentSenders(t *testing.T) {
	t.Parallel()
	c := Default()
	if got := c.OTP.DevelopmentSenders(); !slices.Equal(got, []string{"otp.email.sender", "otp.sms.sender"}) {
		t.Fatalf("defaults: %v, want both log senders reported", got)
	}
	c.OTP.Email.Sender, c.OTP.SMS.Sender = "smtp", "none"
	if got := c.OTP.DevelopmentSenders(); len(got) != 0 {
		t.Fatalf("got %v, want none", got)
	}
}

func TestOTPFromEnv(t *testing.T) {
	t.Parallel()
	cfg, _ := mustResolve(t, "otp:\n  sms:\n    sender: webhook\n  webhook:\n    url: https://sms.example.com/send\n", Flags{},
		[]string{"STEPGATE_OTP_WEBHOOK_SECRET=" + strings.Repeat("w", 40), "STEPGATE_OTP_SMTP_INSECURE_LOOPBACK=true"})
	if cfg.OTP.Webhook.Secret != strings.Repeat("w", 40) || !cfg.OTP.SMTP.InsecureLoopback {
		t.Fatalf("otp = %+v", cfg.OTP)
	}
}
