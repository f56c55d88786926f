package httpx

import (
	"net/url"
	"strings"
)

// SafeReturnTo is the return address check of the sign-in and step-up
// pages and of every feature that sends the browser back to a page of its
// own: a local absolute path comes back as it is, anything else as
// /account. Only a local path is accepted so that no page can be used as
// an open redirect ("//evil.example", "/\evil.example",
// "https://evil.example" and control characters are all refused).
func SafeReturnTo(s string) string {
	const fallback = "/account"
	if s == "" || len(s) > 2048 || !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\") {
		return fallback
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return fallback
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return fallback
	}
	return s
}

// Link is a way on from an error page: the gateway chooses them for a
// refusal on an application's host, the pages show them.
type Link struct {
	Label, URL string
}
