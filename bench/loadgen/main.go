// Command loadgen is bench/gateway's load generator when wrk is not
// installed: a process of its own, as wrk is, so that what it costs is
// not charged to what it measures. It keeps -c HTTP/1.1 keep-alive
// connections busy against one URL for -d after a warm-up, and prints
// one JSON object: requests, errors (failed exchanges and answers other
// than 200), requests per second, latency percentiles in microseconds.
//
//	loadgen [-c 64] [-d 8s] [-warmup 1s] [-X POST -body 'a=b'] [-H 'Name: value']... http://127.0.0.1:8080/path
//
// It dials the URL's host; a Host header names another host to ask for,
// as with wrk -H 'Host: …'.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/stepgate/stepgate/bench/internal/httpload"
)

// headerFlags collects repeated -H 'Name: value' flags.
type headerFlags http.Header

func (h headerFlags) String() string { return "" }

func (h headerFlags) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("header %q: want 'Name: value'", s)
	}
	http.Header(h).Add(strings.TrimSpace(name), strings.TrimSpace(value))
	return nil
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
}

func run(args []string, out io.Writer) error {
	t, conns, warmup, duration, err := parse(args)
	if err != nil {
		return err
	}
	res, err := httpload.Run(t, conns, warmup, duration)
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(res.Report(conns))
}

// parse reads the command line into a target, refusing what would make
// an unbounded or meaningless run.
func parse(args []string) (t httpload.Target, conns int, warmup, duration time.Duration, err error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	header := headerFlags{}
	fs.IntVar(&conns, "c", 64, "keep-alive connections")
	fs.DurationVar(&duration, "d", 8*time.Second, "how long to measure")
	fs.DurationVar(&warmup, "warmup", time.Second, "how long to load before measuring (not counted)")
	fs.StringVar(&t.Method, "X", http.MethodGet, "request method")
	fs.StringVar(&t.Body, "body", "", "request body")
	fs.Var(header, "H", "a request header 'Name: value' (repeatable)")
	if err = fs.Parse(args); err != nil {
		return t, 0, 0, 0, err
	}
	if fs.NArg() != 1 {
		return t, 0, 0, 0, errors.New("want one URL after the flags")
	}
	if conns < 1 || conns > 4096 || duration <= 0 || duration > 10*time.Minute || warmup < 0 || warmup > time.Minute {
		return t, 0, 0, 0, errors.New("-c must be in [1, 4096], -d in (0, 10m] and -warmup in [0, 1m]")
	}
	u, err := url.Parse(fs.Arg(0))
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return t, 0, 0, 0, fmt.Errorf("URL %q: want http://host:port/path", fs.Arg(0))
	}
	t.URL, t.Header, t.Addr = u.String(), http.Header(header), u.Host
	if u.Port() == "" {
		t.Addr = u.Host + ":80"
	}
	return t, conns, warmup, duration, nil
}
