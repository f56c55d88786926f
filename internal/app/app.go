// Package app wires Stepgate together: it builds every component from a
// config.Config, top to bottom, and serves them. The command line and the
// end-to-end tests both use it, so the tests exercise the real wiring.
package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/authn/password"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/dbgate"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/gateway"
	"github.com/stepgate/stepgate/internal/geoip"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/metrics"
	"github.com/stepgate/stepgate/internal/oidc"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/revoke"
	"github.com/stepgate/stepgate/internal/riskservice"
	"github.com/stepgate/stepgate/internal/session"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
	"github.com/stepgate/stepgate/internal/store/postgres"
	"github.com/stepgate/stepgate/internal/store/sqlite"
	"github.com/stepgate/stepgate/internal/users"
	"github.com/stepgate/stepgate/internal/web"
)

// sessionGCInterval is how often sessions past their lifetime (and
// expired codes, flows and tokens) are purged.
const sessionGCInterval = 10 * time.Minute

// listCheckInterval is how often IP list files are checked for changes.
const listCheckInterval = 30 * time.Second

// keyCheckInterval is how often each node checks the signing key
// schedule; rotation is planned hours ahead, so a minute is plenty.
const keyCheckInterval = time.Minute

// App is a running Stepgate: its store, services and HTTP handler.
type App struct {
	Config   config.Config
	Log      *slog.Logger
	Store    store.Store
	Users    *users.Service
	Sessions *session.Manager
	// Policies holds production's compiled policy set; ReloadPolicies
	// swaps it. environments hold every environment's, production's
	// included (see PoliciesFor).
	Policies     *policy.Engine
	environments map[string]*policy.Engine
	// GeoIP is the geoip.database, or nil when none is configured.
	GeoIP *geoip.DB
	// Access builds policy requests from HTTP requests, with this
	// deployment's trusted proxies and GeoIP database.
	Access  *access.Builder
	Methods *Methods
	Gateway *gateway.Gateway
	// Databases are the database gateway's servers, one per configured
	// database; Serve starts them.
	Databases []*dbgate.Server
	// databaseConnections tell clients how to connect to each database.
	databaseConnections []api.Database
	// Revoker ends users' sessions and tokens at security events.
	Revoker *revoke.Revoker
	// Risk assesses sign-ins and keeps users' risk.
	Risk *riskservice.Service
	// Audit is the hash-chained trail of changes to accounts.
	Audit *audit.Log
	// SignIns is the sign-in log: one entry per decision or attempt.
	SignIns *audit.SignInLog
	// anonymousLog bounds the sign-in log entries of clients not signed in.
	anonymousLog *audit.AnonymousLimit
	// Metrics are served at /metrics.
	Metrics *metrics.Metrics
	Clients *oidc.Clients
	Keys    *oidc.KeyRing
	OIDC    *oidc.Provider
	// Admin is what the console and the admin API do; Documents are the
	// policy documents they keep in the store.
	Admin     *admin.Service
	Documents *admin.Documents
	// Elevation runs just-in-time activation of eligible roles.
	Elevation *elevate.Service
	// elevationWatch records and tells each step of an elevation.
	elevationWatch *ElevationWatch
	handler        http.Handler

	// appMu guards appSources.
	appMu      sync.Mutex
	appSources []AppSource
	// reloadMu serialises ReloadPolicies and guards policyGeneration, the
	// stored documents' generation the live set was compiled from.
	reloadMu         sync.Mutex
	policyGeneration int64
}

// OpenStore opens the backend the configuration selects. The CLI uses it
// directly, so commands work on exactly the store the server uses.
func OpenStore(ctx context.Context, cfg config.Config) (store.Store, error) {
	if cfg.StorageKind() == "postgres" {
		return postgres.Open(ctx, cfg.Storage.DSN, postgres.Options{
			ConnectTimeout: cfg.Storage.ConnectTimeout.D(),
			MaxOpenConns:   cfg.Storage.MaxOpenConns,
		})
	}
	return sqlite.Open(ctx, cfg.SQLitePath(), sqlite.Options{BusyTimeout: cfg.Storage.BusyTimeout.D()})
}

// countSignInTotals counts the sign-in log's running totals from the log
// when the database has none yet (once, after an upgrade), before the
// console reads them.
func countSignInTotals(ctx context.Context, st store.Store, log *slog.Logger) error {
	start := time.Now()
	// Writers wait while the totals are counted: say why start-up takes
	// this long, only when it does.
	slow := time.AfterFunc(2*time.Second, func() {
		log.Info("counting the sign-in log's running totals from the log, once after an upgrade")
	})
	defer slow.Stop()
	r, err := st.RebuildSignInTotals(ctx)
	if err != nil {
		return fmt.Errorf("count the sign-in log's totals: %w", err)
	}
	if r.Rebuilt {
		log.Info("counted the sign-in log's running totals from the log", "entries", r.Entries, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// NewUsers builds the user service for cfg over s, with the breached
// password list when one is configured.
func NewUsers(cfg config.Config, s store.Store) (*users.Service, error) {
	a := cfg.Password.Argon2
	h := password.NewHasher(password.Params{Time: a.Time, MemoryKiB: a.MemoryKiB, Threads: a.Threads})
	svc := users.New(s, h, cfg.Password.MinLength)
	svc.RevokeWith(revoke.New(s, nil, nil))
	if cfg.Password.BreachedList != "" {
		list, err := password.LoadBreached(cfg.Password.BreachedList)
		if err != nil {
			return nil, fmt.Errorf("password.breached_list: %w", err)
		}
		svc.RefuseBreached(list)
	}
	return svc, nil
}

// New builds a Stepgate from cfg. The caller must Close it.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := countSignInTotals(ctx, st, log); err != nil {
		_ = st.Close()
		return nil, err
	}
	a, err := build(ctx, cfg, log, st)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return a, nil
}

func build(ctx context.Context, cfg config.Config, log *slog.Logger, st store.Store) (_ *App, err error) {
	issuer, err := url.Parse(cfg.Server.Issuer)
	if err != nil {
		return nil, fmt.Errorf("server.issuer: %w", err)
	}
	secure := issuer.Scheme == "https"
	trusted, err := httpx.ParsePrefixes(cfg.Server.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	csrfKey, err := sharedSecret(ctx, st, "csrf")
	if err != nil {
		return nil, fmt.Errorf("load CSRF key: %w", err)
	}
	svc, err := NewUsers(cfg, st)
	if err != nil {
		return nil, err
	}
	a := &App{Config: cfg, Log: log, Store: st, Users: svc, Revoker: revoke.New(st, log, nil), Audit: audit.New(st, nil), Metrics: metrics.New()}
	svc.RevokeWith(a.Revoker)
	a.SignIns = audit.NewSignInLog(st, audit.SignInLogOptions{
		Buffer: cfg.SignInLog.Buffer, Overflow: audit.Overflow(cfg.SignInLog.Overflow), Log: log,
		Full: func(o audit.Overflow) { a.Metrics.SignInLogFull(string(o)) },
	})
	a.Metrics.WatchSignInLog(a.SignIns.Depth)
	a.anonymousLog = audit.NewAnonymousLimit(anonymousLogPerAddress, anonymousLogTotal, time.Minute, nil)
	defer func() {
		if err != nil {
			_ = a.SignIns.Close(context.Background())
			_ = a.elevationWatch.Close(context.Background())
		}
	}()
	a.Sessions = session.NewManager(st, session.Config{
		CookieName:  cfg.Sessions.CookieName,
		IdleTimeout: cfg.Sessions.IdleTimeout.D(),
		Lifetime:    cfg.Sessions.Lifetime.D(),
		Secure:      secure,
	}, nil)
	clientIP := httpx.ClientIP{Trusted: trusted}
	if a.Methods, err = NewMethods(cfg, st, log, a.sessionUser); err != nil {
		return nil, err
	}
	for _, key := range cfg.OTP.DevelopmentSenders() {
		log.WarnContext(ctx, "one-time codes are written to the log, not sent: for development only", "key", key)
	}
	reportKey, err := sharedSecret(ctx, st, "report-link")
	if err != nil {
		return nil, fmt.Errorf("load the report link key: %w", err)
	}
	pages, err := web.New(web.Deps{
		Users: a.Users, Store: st, Sessions: a.Sessions, CSRFKey: csrfKey,
		Secure: secure, ClientIP: clientIP, Log: log,
		Methods: a.Methods.Registry, Credentials: st,
		Ceremonies: authn.NewCeremonies(st, nil), Throttle: authn.NewThrottle(st, nil), IPThrottle: ipThrottle(st),
		RegisterCheck: a.registerCheck, Detail: a.Methods.CredentialDetail, Revoke: a.Revoker.RevokeUser,
		Passwords: a.Users, Audit: a.recordAudit, Metrics: a.Metrics,
		Passkeys: passkeys(a.Methods), SignIns: a.writeSignIn, PasskeyChallenges: authn.NewLoginChallenges(a.Methods.Box, st, nil),
		Registration: registration(cfg.Registration), KV: st, Passes: a.Methods.Passes,
		ReportKey: reportKey, Issuer: cfg.Server.Issuer, ReportLinkLifetime: cfg.Registration.ReportLinkLifetime.D(),
		Place: a.place,
	})
	if err != nil {
		return nil, err
	}

	// Components that define apps register their app sources above this
	// line: the first compile checks policy targets against them.
	a.appSources = append(a.appSources, AppSources(cfg, st)...)
	if err := ensureAdminRole(ctx, st); err != nil {
		return nil, err
	}
	a.Documents = &admin.Documents{KV: st, Now: time.Now}
	if a.policyGeneration, err = a.Documents.Generation(ctx); err != nil {
		return nil, err
	}
	sets, err := loadEnvironments(ctx, cfg, st, a.sources())
	if err != nil {
		return nil, err
	}
	a.environments = make(map[string]*policy.Engine, len(sets))
	for env, set := range sets {
		a.environments[env] = policy.NewEngine(set.Snapshot)
		log.InfoContext(ctx, "policies loaded", "environment", env, "policies", len(set.Snapshot.Policies()), "files", len(set.Files))
	}
	a.Policies = a.environments[config.ProductionEnvironment]
	if a.Elevation, err = a.newElevation(); err != nil {
		return nil, err
	}

	if a.GeoIP, err = OpenGeoIP(cfg); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && a.GeoIP != nil {
			_ = a.GeoIP.Close()
		}
	}()
	if a.Risk, err = NewRisk(cfg, st, a.GeoIP, clientIP, a.Revoker, a.Metrics, log); err != nil {
		return nil, err
	}
	a.Methods.OnFraudReport = a.Risk.FraudReported
	pages.Risk = a.Risk
	pages.UserRisk = a.Risk.UserRisk
	pages.PasswordChanged = a.Risk.PasswordChanged
	pages.RaiseRisk = a.Risk.SecurityChangeReported
	if cfg.Registration.Campaign.Enabled {
		pages.Offer, pages.OfferSnoozes = a.registrationOffer, cfg.Registration.Campaign.Snoozes
	}
	a.Risk.SetSignInLog(a.logDetection)
	if cfg.Registration.Notify {
		pages.Notifier = a.Methods.Notifier
		if pages.Notifier == nil {
			log.WarnContext(ctx, "changes of sign-in methods are not mailed: otp.email.sender is none", "key", "registration.notify")
		}
	}
	a.Access = &access.Builder{GeoIP: a.GeoIP, ClientIP: clientIP, UserRisk: a.Risk.UserRisk, SessionRisks: a.Risk.SessionRisks, Eligible: EligibleRoles(a.Elevation)}
	if err := a.buildOIDC(ctx, pages); err != nil {
		return nil, err
	}
	gatewayOptions, err := GatewayOptions(cfg.Gateway)
	if err != nil {
		return nil, err
	}
	if a.Gateway, err = gateway.New(gateway.Deps{
		Issuer: cfg.Server.Issuer, Store: st, Sessions: a.Sessions, Policies: a.Policies, Environments: a.environmentSet, Access: a.Access.Request, ReportedRisk: a.Risk.SessionRisks,
		Tokens: a.OIDC, Signer: a.Keys, Box: a.Methods.Box, Methods: a.availableMethods,
		ErrorPage: pages.ErrorPage, AppErrorPage: pages.AppErrorPage, Options: gatewayOptions, Log: log, Metrics: a.Metrics, SignIns: a.writeSignIn,
		TokenFamilyLifetime: cfg.OIDC.RefreshTokenLifetime.D(),
		ClientIP:            clientIP.Of,
	}); err != nil {
		return nil, err
	}
	a.Revoker.Subscribe(a.Gateway.Forget)
	a.OIDC.OnRevoke = a.Gateway.Forget
	a.Risk.Subscribe(a.Gateway.Forget)
	a.Elevation.Observers = append(a.Elevation.Observers, ForgetOnElevation(a.Gateway.Forget))
	pages.StepUps = []web.StepUpSource{a.Gateway, a.OIDC}
	if err := a.buildDatabases(); err != nil {
		return nil, err
	}
	a.buildAdmin()
	adminConsole, err := a.buildConsole(pages)
	if err != nil {
		return nil, err
	}

	a.rolesPages(pages)
	browser := http.NewServeMux()
	pages.Mount(browser)
	adminConsole.Mount(browser)
	a.Methods.Push.Mount(browser)
	a.Gateway.Mount(browser)
	apiMux := api.New(api.Deps{
		Policies: a.Policies, Users: st, Access: a.Access, Token: cfg.API.Token,
		TrustedProxies: trusted, Log: log, SignIns: st, Admin: a.Admin, Tokens: a.OIDC, Detections: a.Risk,
		Databases: a.databaseConnections,
	})

	root := http.NewServeMux()
	// Protocol endpoints sit outside the browser mux: relying parties
	// reach them cross-origin by design (form posts to authorize, back-
	// channel calls to token), and each authenticates what it must.
	a.OIDC.Mount(root)
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	root.HandleFunc("GET /readyz", a.ready)
	// The JSON API is served apart from the browser pages: it takes no
	// forms and no cookies, so it needs none of their CSRF machinery.
	apiMux.Mount(root)
	// Metrics answer the same callers as the API: this machine, or the
	// API token. They tell an attacker which policies fire.
	root.Handle("GET /metrics", apiMux.Protect(a.Metrics.Handler()))
	// Browser routes get Go's Fetch-metadata cross-origin check on top of
	// the per-form CSRF tokens: two independent defences.
	root.Handle("/", http.NewCrossOriginProtection().Handler(browser))
	own := httpx.SecureHeaders(root)
	// Requests for a gateway route's host go to the gateway, untouched by
	// Stepgate's own headers: the upstream's answer is the upstream's.
	a.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.Gateway.Handles(r) {
			a.Gateway.ServeHTTP(w, r)
			return
		}
		own.ServeHTTP(w, r)
	})
	return a, nil
}

// ready answers 200 when the store is reachable, 503 otherwise, so a load
// balancer stops sending sign-ins to a node that cannot serve them.
func (a *App) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.Store.Ping(ctx); err != nil {
		a.Log.WarnContext(r.Context(), "readiness check failed", "err", err)
		http.Error(w, "store unreachable", http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

// Handler is the root HTTP handler.
func (a *App) Handler() http.Handler { return a.handler }

// Serve serves HTTP on ln until ctx ends, then shuts down gracefully:
// in-flight requests get up to server.shutdown_timeout to finish.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(a.Config.Server.GCPercent)
	}
	// HTTP/1.1, and HTTP/2 without TLS for clients that know to use it
	// (h2c with prior knowledge): TLS is terminated in front of Stepgate,
	// and a load balancer speaking HTTP/2 to it keeps multiplexing.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: a.Config.Server.ReadHeaderTimeout.D(),
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
		Protocols:         &protocols,
	}
	gcCtx, stopGC := context.WithCancel(ctx)
	defer stopGC()
	go a.every(gcCtx, sessionGCInterval, "session clean-up", a.Sessions.Sweep)
	go a.every(gcCtx, sessionGCInterval, "expired entry clean-up", func(ctx context.Context) error {
		_, err := a.Store.DeleteExpiredKV(ctx, time.Now())
		return err
	})
	go a.every(gcCtx, listCheckInterval, "IP list reload", a.Risk.ReloadChangedLists)
	go a.every(gcCtx, keyCheckInterval, "signing key maintenance", a.Keys.Maintain)
	go a.every(gcCtx, policyCheckInterval, "policy change check", a.watchPolicies)
	go a.every(gcCtx, elevationSweepInterval, "elevation expiry", func(ctx context.Context) error {
		_, err := a.Elevation.Sweep(ctx)
		return err
	})
	go a.every(gcCtx, sessionGCInterval, "sign-in log retention", func(ctx context.Context) error {
		_, err := a.Store.DeleteSignInsBefore(ctx, time.Now().Add(-a.Config.SignInLog.Retention.D()))
		return err
	})

	stopDatabases, err := a.serveDatabases()
	if err != nil {
		return err
	}
	defer stopDatabases()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.Log.Info("stepgate is serving", "addr", ln.Addr().String(), "issuer", a.Config.Server.Issuer,
		"storage", a.Config.StorageKind())

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.Log.Info("shutting down", "grace", a.Config.Server.ShutdownTimeout.D().String())
	shutCtx, cancel := context.WithTimeout(context.Background(), a.Config.Server.ShutdownTimeout.D())
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// every runs task each interval until ctx ends, logging its failures
// (the next run tries again): the server's housekeeping.
func (a *App) every(ctx context.Context, interval time.Duration, task string, fn func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				a.Log.Warn(task+" failed", "err", err)
			}
		}
	}
}

// Close writes the queued sign-in log entries and releases the store and
// the GeoIP database.
func (a *App) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.Config.Server.ShutdownTimeout.D())
	defer cancel()
	logErr := a.SignIns.Close(ctx)
	watchErr := a.elevationWatch.Close(ctx)
	a.Gateway.Close()
	a.closeDatabases()
	var geoErr error
	if a.GeoIP != nil {
		geoErr = a.GeoIP.Close()
	}
	return errors.Join(watchErr, logErr, a.Store.Close(), geoErr)
}

// sharedSecret returns the 32-byte secret stored under name, creating it
// on first use. All nodes sharing a store share the secret; nodes racing
// to create it all end up with the winner's.
func sharedSecret(ctx context.Context, kv store.KV, name string) ([]byte, error) {
	ref := kvspace.Secret.At(name)
	stored, err := ref.Get(ctx, kv)
	if err == nil {
		return stored, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	err = ref.Create(ctx, kv, secret, time.Time{})
	if errors.Is(err, store.ErrConflict) {
		return ref.Get(ctx, kv)
	}
	return secret, err
}

// NewLogger returns the process logger: text (default) or JSON on w.
func NewLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(strings.ToUpper(level)))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
