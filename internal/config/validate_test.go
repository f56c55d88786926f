package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string // problem paths; nil means valid
		// wantIn is a substring the first problem's message must contain,
		// to check that it names the fix.
		wantIn string
	}{
		{name: "ok/defaults", mutate: func(*Config) {}},
		{name: "ok/listen-all-interfaces", mutate: func(c *Config) { c.Server.Listen = ":8080" }},
		{name: "ok/listen-ipv6", mutate: func(c *Config) { c.Server.Listen = "[::1]:0" }},
		{name: "ok/issuer-https-with-path", mutate: func(c *Config) { c.Server.Issuer = "https://example.com/sso" }},
		{name: "ok/issuer-http-localhost", mutate: func(c *Config) { c.Server.Issuer = "http://LOCALHOST:8080" }},
		{name: "ok/issuer-http-ipv6-loopback", mutate: func(c *Config) { c.Server.Issuer = "http://[::1]:8080" }},
		{name: "ok/trusted-proxies", mutate: func(c *Config) {
			c.Server.TrustedProxies = []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.1", "fe80::1%eth0"}
		}},
		{name: "ok/gateway-trusted-proxies", mutate: func(c *Config) {
			c.Gateway.TrustedProxies = []string{"10.0.0.0/8", "fd00::/8", "192.0.2.1", "::1"}
		}},
		{name: "ok/gateway-trusted-proxies-none", mutate: func(c *Config) { c.Gateway.TrustedProxies = nil }},
		{name: "fail/gateway-trusted-proxies", mutate: func(c *Config) {
			c.Gateway.TrustedProxies = []string{"10.0.0.0/8", "traefik", "10.0.0.1/8", "::ffff:10.0.0.0/104", "fe80::1%eth0", "10.0.0.0/33"}
		}, want: []string{"gateway.trusted_proxies[1]", "gateway.trusted_proxies[2]", "gateway.trusted_proxies[3]", "gateway.trusted_proxies[4]", "gateway.trusted_proxies[5]"},
			wantIn: "write it like 10.0.0.7 or 10.0.0.0/8"},
		{name: "ok/sqlite-absolute", mutate: func(c *Config) { c.Storage.DSN = "sqlite:///var/lib/stepgate/db.sqlite" }},
		{name: "ok/sqlite-relative", mutate: func(c *Config) { c.Storage.DSN = "sqlite://data/db.sqlite" }},
		{name: "ok/postgres", mutate: func(c *Config) { c.Storage.DSN = "postgres://u:p@db:5432/stepgate?sslmode=disable" }},
		{name: "ok/postgresql-no-data-dir", mutate: func(c *Config) {
			c.Storage.DSN = "postgresql:///stepgate?host=/run/postgresql"
			c.Server.DataDir = ""
		}},
		{name: "ok/cookie-host-prefix", mutate: func(c *Config) { c.Sessions.CookieName = "__Host-sg" }},
		{name: "ok/lifetime-equals-idle", mutate: func(c *Config) { c.Sessions.Lifetime = c.Sessions.IdleTimeout }},
		{name: "ok/min-length-64", mutate: func(c *Config) { c.Password.MinLength = 64 }},
		{name: "ok/policy-environments", mutate: func(c *Config) {
			c.Policy.Environments = map[string]PolicyEnvironment{"staging": {Files: []string{"staging/"}}}
		}},
		{name: "ok/policy-files", mutate: func(c *Config) { c.Policy.Files = []string{"policies/", "extra.yaml"} }},
		{name: "ok/geoip-database", mutate: func(c *Config) { c.GeoIP.Database = "/var/lib/GeoIP/GeoLite2-Country.mmdb" }},
		{name: "ok/api-token", mutate: func(c *Config) { c.API.Token = strings.Repeat("k", 32) }},

		{name: "ok/identity-headers", mutate: func(c *Config) {
			c.Gateway.Routes = []GatewayRoute{
				{Name: "a", From: "http://a.localhost:8080", To: "http://127.0.0.1:9001", IdentityHeaders: IdentityAssertion},
				{Name: "b", From: "http://b.localhost:8080", To: "http://127.0.0.1:9002", IdentityHeaders: IdentityNone},
			}
		}},
		{name: "fail/identity-headers", mutate: func(c *Config) {
			c.Gateway.Routes = []GatewayRoute{{Name: "a", From: "http://a.localhost:8080", To: "http://127.0.0.1:9001", IdentityHeaders: "jwt"}}
		}, want: []string{"gateway.routes[0].identity_headers"}, wantIn: "use all, assertion, plain or none"},
		{name: "ok/non-ascii-rule-opted-in", mutate: func(c *Config) {
			c.Gateway.Routes = []GatewayRoute{{Name: "a", From: "http://a.localhost:8080", To: "http://127.0.0.1:9001",
				AllowNonASCIIPaths: true, AllowPathParameters: true, Rules: []GatewayRule{{Path: "/über/*", Context: "c1"}}}}
		}},
		{name: "fail/rule-path-parameters", mutate: func(c *Config) {
			c.Gateway.Routes = []GatewayRoute{{Name: "a", From: "http://a.localhost:8080", To: "http://127.0.0.1:9001",
				AllowPathParameters: true, Rules: []GatewayRule{{Path: "/admin;v=1", Context: "c1"}}}}
		}, want: []string{"gateway.routes[0].rules[0].path"}, wantIn: "without their ; parameters"},
		{name: "fail/rule-path-non-ascii", mutate: func(c *Config) {
			c.Gateway.Routes = []GatewayRoute{{Name: "a", From: "http://a.localhost:8080", To: "http://127.0.0.1:9001",
				Rules: []GatewayRule{{Path: "/über", Context: "c1"}}}}
		}, want: []string{"gateway.routes[0].rules[0].path"}, wantIn: "allow_non_ascii_paths: true"},
		{name: "ok/assertion-per-route", mutate: func(c *Config) {
			c.Gateway.Routes = []GatewayRoute{{Name: "a", From: "http://a.localhost:8080", To: "http://127.0.0.1:9001",
				AssertionAudience: "https://a.internal", AssertionLifetime: Duration(10 * time.Second)}}
		}},
		{name: "fail/assertion-lifetimes", mutate: func(c *Config) {
			c.Gateway.AssertionLifetime = Duration(time.Hour)
			c.Gateway.Routes = []GatewayRoute{{Name: "a", From: "http://a.localhost:8080", To: "http://127.0.0.1:9001",
				AssertionAudience: " https://a.internal", AssertionLifetime: Duration(time.Millisecond)}}
		}, want: []string{"gateway.assertion_lifetime", "gateway.routes[0].assertion_lifetime", "gateway.routes[0].assertion_audience"}, wantIn: "1s to 5m0s"},
		{name: "fail/listen-no-port", mutate: func(c *Config) { c.Server.Listen = "localhost" }, want: []string{"server.listen"}, wantIn: "127.0.0.1:8080"},
		{name: "fail/listen-named-port", mutate: func(c *Config) { c.Server.Listen = "localhost:http" }, want: []string{"server.listen"}, wantIn: "0 to 65535"},
		{name: "fail/listen-port-range", mutate: func(c *Config) { c.Server.Listen = ":65536" }, want: []string{"server.listen"}},
		{name: "fail/issuer-relative", mutate: func(c *Config) { c.Server.Issuer = "sso.example.com" }, want: []string{"server.issuer"}, wantIn: "https://sso.example.com"},
		{name: "fail/issuer-scheme", mutate: func(c *Config) { c.Server.Issuer = "ftp://example.com" }, want: []string{"server.issuer"}},
		{name: "fail/issuer-query", mutate: func(c *Config) { c.Server.Issuer = "https://example.com/?a=b" }, want: []string{"server.issuer"}, wantIn: "query"},
		{name: "fail/issuer-fragment", mutate: func(c *Config) { c.Server.Issuer = "https://example.com/#x" }, want: []string{"server.issuer"}},
		{name: "fail/issuer-userinfo", mutate: func(c *Config) { c.Server.Issuer = "https://u:secret@example.com" }, want: []string{"server.issuer"}},
		{name: "fail/issuer-http-remote", mutate: func(c *Config) { c.Server.Issuer = "http://sso.example.com" }, want: []string{"server.issuer"}, wantIn: "https://"},
		{name: "fail/issuer-http-localhost-lookalike", mutate: func(c *Config) { c.Server.Issuer = "http://localhost.example.com" }, want: []string{"server.issuer"}},
		{name: "fail/data-dir-empty-sqlite", mutate: func(c *Config) { c.Server.DataDir = "" }, want: []string{"server.data_dir"}},
		{name: "fail/timeouts", mutate: func(c *Config) {
			c.Server.ShutdownTimeout = 0
			c.Server.ReadHeaderTimeout = Duration(-time.Second)
			c.Storage.BusyTimeout = 0
			c.Storage.ConnectTimeout = 0
		}, want: []string{"server.shutdown_timeout", "server.read_header_timeout", "storage.busy_timeout", "storage.connect_timeout"}, wantIn: "greater than 0"},
		{name: "fail/trusted-proxy", mutate: func(c *Config) { c.Server.TrustedProxies = []string{"10.0.0.0/8", "", "example.com"} }, want: []string{"server.trusted_proxies[1]", "server.trusted_proxies[2]"}},
		{name: "fail/dsn-scheme", mutate: func(c *Config) { c.Storage.DSN = "mysql://x" }, want: []string{"storage.dsn"}, wantIn: "postgres://"},
		{name: "fail/dsn-keyword-value", mutate: func(c *Config) { c.Storage.DSN = "host=db password=secret" }, want: []string{"storage.dsn"}},
		{name: "fail/dsn-uppercase-scheme", mutate: func(c *Config) { c.Storage.DSN = "POSTGRES://db/x" }, want: []string{"storage.dsn"}},
		{name: "fail/sqlite-no-path", mutate: func(c *Config) { c.Storage.DSN = "sqlite://" }, want: []string{"storage.dsn"}},
		{name: "fail/sqlite-query", mutate: func(c *Config) { c.Storage.DSN = "sqlite://x.db?mode=ro" }, want: []string{"storage.dsn"}},
		{name: "fail/max-open-conns", mutate: func(c *Config) { c.Storage.MaxOpenConns = 0 }, want: []string{"storage.max_open_conns"}},
		{name: "fail/log", mutate: func(c *Config) {
			c.Log.Format = "JSON"
			c.Log.Level = "verbose"
		}, want: []string{"log.format", "log.level"}, wantIn: "text or json"},
		{name: "fail/cookie-empty", mutate: func(c *Config) { c.Sessions.CookieName = "" }, want: []string{"sessions.cookie_name"}},
		{name: "fail/cookie-separator", mutate: func(c *Config) { c.Sessions.CookieName = "sg;session" }, want: []string{"sessions.cookie_name"}, wantIn: `';'`},
		{name: "fail/cookie-space", mutate: func(c *Config) { c.Sessions.CookieName = "sg session" }, want: []string{"sessions.cookie_name"}},
		{name: "fail/cookie-non-ascii", mutate: func(c *Config) { c.Sessions.CookieName = "sitzung_ü" }, want: []string{"sessions.cookie_name"}, wantIn: `'ü'`},
		{name: "fail/idle-timeout", mutate: func(c *Config) { c.Sessions.IdleTimeout = 0 }, want: []string{"sessions.idle_timeout"}},
		{name: "fail/lifetime-zero", mutate: func(c *Config) { c.Sessions.Lifetime = 0 }, want: []string{"sessions.lifetime"}},
		{name: "fail/lifetime-below-idle", mutate: func(c *Config) { c.Sessions.Lifetime = Duration(time.Hour) }, want: []string{"sessions.lifetime"}, wantIn: "8h0m0s"},
		{name: "fail/min-length-low", mutate: func(c *Config) { c.Password.MinLength = 7 }, want: []string{"password.min_length"}, wantIn: "NIST SP 800-63B"},
		{name: "fail/min-length-high", mutate: func(c *Config) { c.Password.MinLength = 65 }, want: []string{"password.min_length"}},
		{name: "fail/argon2", mutate: func(c *Config) {
			c.Password.Argon2 = Argon2{Time: 0, Threads: 0, MemoryKiB: 7167}
		}, want: []string{"password.argon2.time", "password.argon2.threads", "password.argon2.memory_kib"}},
		{name: "fail/policy-file-empty", mutate: func(c *Config) { c.Policy.Files = []string{"a.yaml", " "} }, want: []string{"policy.files[1]"}, wantIn: "remove the entry"},
		{name: "fail/policy-environment-production", mutate: func(c *Config) {
			c.Policy.Environments = map[string]PolicyEnvironment{"production": {Files: []string{"p.yaml"}}}
		}, want: []string{"policy.environments.production"}, wantIn: "policy.files"},
		{name: "fail/policy-environment-name", mutate: func(c *Config) {
			c.Policy.Environments = map[string]PolicyEnvironment{"Stage/1": {}, "staging": {Files: []string{""}}}
		}, want: []string{"policy.environments.Stage/1", "policy.environments.staging.files[0]"}},
		{name: "fail/environment-unknown", mutate: func(c *Config) {
			c.Policy.Environments = map[string]PolicyEnvironment{"staging": {}}
			c.Gateway.Routes = []GatewayRoute{{Name: "a", From: "http://a.localhost:8080", To: "http://127.0.0.1:9001", Environment: "stagin"}}
		}, want: []string{"gateway.routes[0].environment"}, wantIn: "policy.environments"},
		{name: "fail/app-in-two-environments", mutate: func(c *Config) {
			c.Policy.Environments = map[string]PolicyEnvironment{"staging": {}}
			c.Gateway.Routes = []GatewayRoute{{Name: "ledger", From: "http://a.localhost:8080", To: "http://127.0.0.1:9001", Environment: "staging"}}
			c.OIDC.Clients = []OIDCClient{{ID: "ledger", Secret: strings.Repeat("s", 32), RedirectURIs: []string{"https://ledger.example/cb"}}}
		}, want: []string{"oidc.clients[0].environment"}, wantIn: "gateway.routes[0].environment"},
		// Attack: a staging client named like the console shared its
		// sign-in log entries, so a production change's impact replay
		// left the console's own decisions out.
		{name: "fail/attack-staging-client-named-like-the-console", mutate: func(c *Config) {
			c.Policy.Environments = map[string]PolicyEnvironment{"staging": {}}
			c.OIDC.Clients = []OIDCClient{{ID: "stepgate-console", Secret: strings.Repeat("s", 32), RedirectURIs: []string{"https://c.example/cb"}, Environment: "staging"}}
		}, want: []string{"oidc.clients[0].environment"}, wantIn: "Stepgate's own app"},
		{name: "fail/attack-staging-route-named-like-role-activation", mutate: func(c *Config) {
			c.Policy.Environments = map[string]PolicyEnvironment{"staging": {}}
			c.Gateway.Routes = []GatewayRoute{{Name: "stepgate-elevation", From: "http://a.localhost:8080", To: "http://127.0.0.1:9001", Environment: "staging"}}
		}, want: []string{"gateway.routes[0].environment"}, wantIn: "Stepgate's own app"},
		{name: "ok/production-route-named-like-the-console", mutate: func(c *Config) {
			c.Gateway.Routes = []GatewayRoute{{Name: "stepgate-console", From: "http://a.localhost:8080", To: "http://127.0.0.1:9001"}}
		}},
		{name: "fail/api-token-short", mutate: func(c *Config) { c.API.Token = "secret" }, want: []string{"api.token"}, wantIn: "openssl rand"},
		{name: "fail/api-token-space", mutate: func(c *Config) { c.API.Token = strings.Repeat("secret ", 6) }, want: []string{"api.token"}, wantIn: "Authorization header"},
		{name: "fail/argon2-memory-recommends", mutate: func(c *Config) { c.Password.Argon2.MemoryKiB = 4096 }, want: []string{"password.argon2.memory_kib"}, wantIn: "19456"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tt.mutate(&c)
			ps := c.Validate()
			var paths []string
			for _, p := range ps {
				paths = append(paths, p.Path)
				if p.Line != 0 {
					t.Errorf("Validate set a line: %v", p)
				}
			}
			if !reflect.DeepEqual(paths, tt.want) {
				t.Fatalf("problem paths = %q, want %q (%v)", paths, tt.want, ps)
			}
			if tt.wantIn != "" && !strings.Contains(ps[0].Message, tt.wantIn) {
				t.Errorf("message %q does not contain %q", ps[0].Message, tt.wantIn)
			}
			for _, p := range ps {
				if strings.Contains(p.Message, "secret") {
					t.Errorf("message leaks a secret: %q", p.Message)
				}
			}
		})
	}
}

func TestStorage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, dsn, kind, path string
	}{
		{name: "ok/empty", dsn: "", kind: "sqlite", path: "data/stepgate.db"},
		{name: "ok/sqlite", dsn: "sqlite", kind: "sqlite", path: "data/stepgate.db"},
		{name: "ok/sqlite-absolute", dsn: "sqlite:///var/lib/sg.db", kind: "sqlite", path: "/var/lib/sg.db"},
		{name: "ok/sqlite-relative", dsn: "sqlite://rel/sg.db", kind: "sqlite", path: "rel/sg.db"},
		{name: "ok/postgres", dsn: "postgres://h/db", kind: "postgres"},
		{name: "ok/postgresql", dsn: "postgresql://h/db", kind: "postgres"},
		{name: "fail/mysql", dsn: "mysql://h/db"},
		{name: "fail/sqlite-empty-path", dsn: "sqlite://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			c.Server.DataDir = "data"
			c.Storage.DSN = tt.dsn
			if got := c.StorageKind(); got != tt.kind {
				t.Errorf("StorageKind() = %q, want %q", got, tt.kind)
			}
			if got := c.SQLitePath(); got != tt.path {
				t.Errorf("SQLitePath() = %q, want %q", got, tt.path)
			}
		})
	}
}

func TestPort(t *testing.T) {
	t.Parallel()
	for listen, want := range map[string]string{
		"127.0.0.1:9123": "9123",
		"[::1]:80":       "80",
		":0":             "0",
		"localhost":      "",
		"host:http":      "",
	} {
		if got := (Server{Listen: listen}).Port(); got != want {
			t.Errorf("Port(%q) = %q, want %q", listen, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{name: "ok/userinfo", in: "postgres://admin:hunter2@db/x", want: "postgres://admin:xxxxx@db/x"},
		{name: "ok/user-only", in: "postgres://admin@db/x", want: "postgres://admin@db/x"},
		{name: "ok/at-and-slash-in-password", in: "postgres://u:a/b@c@db/x", want: "postgres://u:xxxxx@db/x"},
		{name: "ok/query-password", in: "postgres://db/x?user=u&password=hunter2&sslmode=require", want: "postgres://db/x?user=u&password=xxxxx&sslmode=require"},
		{name: "ok/keyword-value", in: "host=db password='hunter 2' sslpassword=k", want: "host=db password=xxxxx sslpassword=xxxxx"},
		{name: "ok/no-secret", in: "sqlite", want: "sqlite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := redact(tt.in); got != tt.want {
				t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
