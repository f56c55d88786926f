//go:build unix

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// curlSteps runs step 7's curl lines as written, with net/http doing
// what curl does, and compares what they print with the README.
func (w *walkthrough) curlSteps() {
	w.t.Helper()
	const step = 7
	vars := map[string]string{}
	for _, c := range walkSteps[step].Commands {
		c = w.command(step, c.Line)
		line := c.Line
		assign := ""
		if m := regexp.MustCompile(`^(\w+)=\$\((curl .*) \| sed -E 's/\.\*"access_token":"\(\[\^"\]\+\)"\.\*/\\1/'\)$`).FindStringSubmatch(line); m != nil {
			assign, line = m[1], m[2]
		} else if strings.Contains(line, "|") || strings.Contains(line, "$(") {
			w.t.Fatalf("step 7: the test cannot run %q: teach curlSteps the new form", line)
		}
		out := w.curl(line, vars)
		if assign != "" {
			tok := regexp.MustCompile(`"access_token":"([^"]+)"`).FindStringSubmatch(out)
			if tok == nil {
				w.t.Fatalf("%s printed no access token:\n%s", line, out)
			}
			vars[assign] = tok[1]
			continue
		}
		for _, want := range c.Outputs {
			if !strings.Contains("\n"+out, "\n"+want+"\n") {
				w.t.Errorf("%s printed\n%s\nwithout the README's line %q", c.Line, out, want)
			}
		}
		if strings.Contains(line, "BANKPORT") && !strings.HasPrefix(out, "HTTP/1.1 401 ") {
			w.t.Errorf("the bank's own port answers\n%s\nwant 401", out)
		}
	}
	// "...answers 401, and so does the same request carrying $TOKEN":
	// the bank's own port takes no token of Stepgate's.
	for _, h := range []string{"Authorization: Bearer $TOKEN", "X-Stepgate-Assertion: $TOKEN"} {
		line := "curl -i -H '" + h + "' http://127.0.0.1:BANKPORT/"
		if out := w.curl(line, vars); !strings.HasPrefix(out, "HTTP/1.1 401 ") {
			w.t.Errorf("%s answers\n%s\nwant 401", line, out)
		}
	}
}

// shellWords splits a command line as a POSIX shell does for the
// quoting the README uses, expanding $NAME from vars outside single
// quotes.
func shellWords(line string, vars map[string]string) []string {
	var words []string
	var cur strings.Builder
	inWord, quote := false, rune(0)
	expand := func(s string) string {
		return regexp.MustCompile(`\$(\w+)`).ReplaceAllStringFunc(s, func(v string) string { return vars[v[1:]] })
	}
	var pending strings.Builder // double-quoted or bare text, expanded when it ends
	flush := func() { cur.WriteString(expand(pending.String())); pending.Reset() }
	for _, r := range line {
		switch {
		case quote == '\'' && r == '\'':
			quote = 0
		case quote == '\'':
			cur.WriteRune(r)
		case quote == '"' && r == '"':
			flush()
			quote = 0
		case quote == '"':
			pending.WriteRune(r)
		case r == '\'' || r == '"':
			flush()
			quote, inWord = r, true
		case r == ' ':
			if inWord {
				flush()
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			pending.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		flush()
		words = append(words, cur.String())
	}
	return words
}

// curl performs a curl command line with the options the README uses
// (-i, -s, -o /dev/null, -w '%{http_code}\n', -H, -u, -d) against the
// demo, and returns what curl prints: with -i the status line and the
// headers, then the body.
func (w *walkthrough) curl(line string, vars map[string]string) string {
	w.t.Helper()
	args := shellWords(w.onDemo(line), vars)
	if len(args) == 0 || args[0] != "curl" {
		w.t.Fatalf("not a curl line: %q", line)
	}
	var (
		include, discard bool
		format, target   string
		user             *url.Userinfo
		headers          [][2]string
		form             []string
	)
	for i := 1; i < len(args); i++ {
		next := func() string {
			i++
			if i >= len(args) {
				w.t.Fatalf("%s: %s needs a value", line, args[i-1])
			}
			return args[i]
		}
		switch a := args[i]; a {
		case "-i":
			include = true
		case "-s":
		case "-o":
			discard = next() == "/dev/null"
		case "-w":
			format = next()
		case "-H":
			k, v, _ := strings.Cut(next(), ":")
			headers = append(headers, [2]string{k, strings.TrimSpace(v)})
		case "-u":
			u, p, _ := strings.Cut(next(), ":")
			user = url.UserPassword(u, p)
		case "-d":
			form = append(form, next())
		default:
			if strings.HasPrefix(a, "-") || target != "" {
				w.t.Fatalf("%s: the test's curl does not know %q: teach it", line, a)
			}
			target = a
		}
	}
	method, body := http.MethodGet, ""
	if form != nil {
		method, body = http.MethodPost, strings.Join(form, "&")
	}
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("User-Agent", "curl/8")
	req.Header.Set("Accept", "*/*")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != nil {
		p, _ := user.Password()
		req.SetBasicAuth(user.Username(), p)
	}
	for _, h := range headers {
		req.Header.Set(h[0], h[1])
	}
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != w.bankAddr {
				addr = w.addr // curl resolves *.localhost to this machine too
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
	resp, err := client.Do(req)
	if err != nil {
		w.t.Fatalf("%s: %v", line, err)
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(resp.Body)
	var out strings.Builder
	if include {
		fmt.Fprintf(&out, "%s %s\n", resp.Proto, resp.Status)
		for k, vs := range resp.Header {
			for _, v := range vs {
				fmt.Fprintf(&out, "%s: %s\n", k, v)
			}
		}
		out.WriteString("\n")
	}
	if !discard {
		out.Write(respBody)
	}
	out.WriteString(strings.ReplaceAll(strings.ReplaceAll(format, "%{http_code}", fmt.Sprint(resp.StatusCode)), `\n`, "\n"))
	return out.String()
}
