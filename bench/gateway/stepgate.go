package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/stepgate/stepgate/bench/internal/rig"
	"github.com/stepgate/stepgate/internal/config"
)

// stepgate is a running Stepgate whose gateway protects the upstream at
// http://bank.localhost:PORT, served on the same listener.
type stepgate struct {
	addr   string // 127.0.0.1:PORT
	base   string // http://127.0.0.1:PORT, the issuer
	bank   string // http://bank.localhost:PORT, the route
	public string // http://public.localhost:PORT, a route that asks for no sign-in
	fa     string // http://fa.localhost:PORT, a route used through forward-auth only
	// lean and signed are routes like bank whose upstream is told
	// nothing of the user, or only through the signed assertion: beside
	// bank, they show what the decision costs apart from the identity
	// headers.
	lean, signed string
	// nginx is the route behind nginx's auth_request
	// (http://nginx.localhost:NGINXPORT), and nginxAddr where nginx
	// listens for it.
	nginx, nginxAddr string
	stop             func()
	// proc is Stepgate's process when it runs in one of its own.
	proc   *child
	cookie string // the browser's gateway cookie for the route
	// faCookie is the browser's gateway cookie for route fa.
	faCookie string
	// leanCookie, signedCookie and nginxCookie are the gateway cookies
	// for routes lean, signed and nginx.
	leanCookie, signedCookie, nginxCookie string
	token                                 string // an access token of client bank
}

// startStepgate runs Stepgate inside this process, from the
// configuration file at cfgPath, with the same wiring as `stepgate
// serve`, and adds the bench user: the in-process rows.
func startStepgate(ctx context.Context, cfgPath, nginxAddr string) (*stepgate, error) {
	cfg, _, err := config.Resolve(cfgPath, config.Flags{}, nil)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return nil, err
	}
	stop, err := rig.Serve(ctx, cfg, ln)
	if err != nil {
		return nil, err
	}
	s := onAddr(cfg.Server.Listen, nginxAddr)
	s.stop = func() {
		if err := stop(); err != nil {
			fmt.Fprintln(errOut, "gatewaybench: stepgate:", err)
		}
	}
	return s, nil
}

// spawnStepgate runs the stepgate binary at bin in a process of its own,
// as it runs in production and as nginx runs here: `stepgate user add`
// for the bench user, then `stepgate serve`, both with the configuration
// file at cfgPath, whose server.listen is addr. Its log (warnings and
// errors) goes to logPath.
func spawnStepgate(ctx context.Context, bin, cfgPath, addr, nginxAddr, logPath string) (*stepgate, error) {
	add := exec.Command(bin, "--config", cfgPath, "user", "add", rig.User, "--email", rig.Email, "--password-stdin") //nolint:gosec // the binary this harness built
	add.Stdin = strings.NewReader(rig.Password + "\n")
	if _, _, err := runChild(ctx, "stepgate user add", add, time.Minute); err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath) //nolint:gosec // the harness's own temporary directory
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--config", cfgPath, "serve") //nolint:gosec // as above
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// SIGTERM is how a service manager stops Stepgate: it shuts down
	// gracefully, as it would if the harness died.
	proc, err := startChild("stepgate", cmd, syscall.SIGTERM, syscall.SIGTERM)
	_ = logFile.Close()
	if err != nil {
		return nil, err
	}
	s := onAddr(addr, nginxAddr)
	s.proc, s.stop = proc, proc.stop
	if err := waitHealthy(ctx, addr, proc, 30*time.Second); err != nil {
		proc.stop()
		log, _ := os.ReadFile(logPath) //nolint:gosec // as above
		return nil, fmt.Errorf("stepgate serve: %w: %s", err, log)
	}
	return s, nil
}

// waitListening waits until something accepts connections on addr, for
// at most limit, and fails at once if proc ends first.
func waitListening(ctx context.Context, addr string, proc *child, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if proc.exited() {
			return errors.New("the process ended")
		}
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("nothing listens on %s after %s", addr, limit)
}

// waitHealthy waits until Stepgate at addr answers /healthz, for at most
// limit: it listens before it has read its configuration, and may still
// refuse to start.
func waitHealthy(ctx context.Context, addr string, proc *child, limit time.Duration) error {
	if err := waitListening(ctx, addr, proc, limit); err != nil {
		return err
	}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && !proc.exited() {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("no answer from http://%s/healthz", addr)
}

// onAddr names Stepgate listening on addr and its routes' addresses.
func onAddr(addr, nginxAddr string) *stepgate {
	_, port, _ := net.SplitHostPort(addr)
	_, nginxPort, _ := net.SplitHostPort(nginxAddr)
	return &stepgate{addr: addr, base: "http://" + addr, bank: "http://bank.localhost:" + port, public: "http://public.localhost:" + port,
		fa: "http://fa.localhost:" + port, lean: "http://lean.localhost:" + port, signed: "http://signed.localhost:" + port,
		nginx: "http://nginx.localhost:" + nginxPort, nginxAddr: nginxAddr}
}

// browser is a cookie-keeping client that reaches every host name on
// Stepgate's listener, as a browser resolving *.localhost does, but for
// the nginx route's, which it reaches through nginx; it shows each
// redirect instead of following it.
func (s *stepgate) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, hostPort string) (net.Conn, error) {
			addr := s.addr
			if "http://"+hostPort == s.nginx {
				addr = s.nginxAddr // the auth_request route is reached through nginx
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}},
	}
}

// signIn walks what a browser does on its first visit to each route: the
// gateway sends it to /gateway/start, Stepgate to /login; after signing
// in, /gateway/start mints a ticket and the route's callback turns it
// into the gateway cookie.
func (s *stepgate) signIn(c *http.Client) error {
	var err error
	if s.cookie, err = s.handOff(c, s.bank); err != nil {
		return err
	}
	if s.faCookie, err = s.handOff(c, s.fa); err != nil {
		return err
	}
	if s.leanCookie, err = s.handOff(c, s.lean); err != nil {
		return err
	}
	s.signedCookie, err = s.handOff(c, s.signed)
	return err
}

// signInThroughNginx takes the hand-off for the nginx route through
// nginx, as a browser in front of it would: nginx answers the first
// visit with Stepgate's sign-in address, and passes the route's
// callback on to Stepgate.
func (s *stepgate) signInThroughNginx(c *http.Client) (err error) {
	s.nginxCookie, err = s.handOff(c, s.nginx)
	return err
}

// handOff follows the hand-off from route's home page until a page that
// is not a redirect, and returns the gateway cookie for route.
func (s *stepgate) handOff(c *http.Client, route string) (string, error) {
	next := route + "/"
	for range 12 {
		resp, err := c.Get(next)
		if err != nil {
			return "", err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			break // the route's page (a forward-auth route has none here)
		}
		if loc.Path == "/login" {
			if loc, err = rig.SignIn(c, s.base, loc.Query().Get("return_to")); err != nil {
				return "", err
			}
		}
		next = loc.String()
	}
	u, _ := url.Parse(route)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "stepgate_gw" {
			return ck.Value, nil
		}
	}
	return "", fmt.Errorf("no gateway cookie for %s after signing in", route)
}

// fetchToken runs the authorization code flow with PKCE for client bank
// in the signed-in browser c, and redeems the code for an access token.
func (s *stepgate) fetchToken(c *http.Client) (err error) {
	s.token, err = rig.Token(c, s.base, rig.Client{ID: bankID, Secret: bankSecret, RedirectURI: bankRedirect})
	return err
}
