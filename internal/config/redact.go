package config

import (
	"regexp"
	"strconv"
	"strings"
)

// maxQuoted bounds how much of a bad value a message repeats, so a stray
// multi-kilobyte blob does not drown the other problems.
const maxQuoted = 120

// quote renders a user-supplied value for a message: passwords redacted,
// long values shortened, control characters escaped (so a value cannot
// forge extra lines in the error output).
func quote(s string) string {
	s = redact(s)
	if len(s) > maxQuoted {
		s = strings.ToValidUTF8(s[:maxQuoted], "") + "…"
	}
	return strconv.Quote(s)
}

// passwordParam matches password=VALUE in query strings and keyword/value
// DSNs (pgx also accepts sslpassword=), quoted or not.
var passwordParam = regexp.MustCompile(`(?i)(password=)('[^']*'?|[^&\s]*)`)

// redact hides passwords in DSN-like strings. It works on the raw text
// rather than on url.Parse's result because the values it is asked to
// quote are often the ones url.Parse rejects. Over-redacting is fine: the
// message only needs to show the shape of the value.
func redact(s string) string {
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		// The last "@" ends the userinfo even when an unescaped "@" or "/"
		// sits inside the password.
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if user, _, hasPass := strings.Cut(rest[:at], ":"); hasPass {
				s = scheme + "://" + user + ":xxxxx" + rest[at:]
			}
		}
	}
	return passwordParam.ReplaceAllString(s, "${1}xxxxx")
}
