package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// writeFile writes content to a stepgate.yaml in a fresh directory.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stepgate.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// mustResolve resolves a file (none when content is "") and fails the test
// on any error.
func mustResolve(t *testing.T, content string, flags Flags, environ []string) (Config, []string) {
	t.Helper()
	path := ""
	if content != "" {
		path = writeFile(t, content)
	}
	cfg, warnings, err := Resolve(path, flags, environ)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	return cfg, warnings
}

// problemsOf resolves and returns the problems of the *Errors it must fail with.
func problemsOf(t *testing.T, content string, flags Flags, environ []string) []Problem {
	t.Helper()
	path := ""
	if content != "" {
		path = writeFile(t, content)
	}
	_, _, err := Resolve(path, flags, environ)
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Resolve error = %v (%T), want *Errors", err, err)
	}
	if errs.File != path {
		t.Errorf("Errors.File = %q, want %q", errs.File, path)
	}
	return errs.Problems
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	if ps := Default().Validate(); len(ps) != 0 {
		t.Fatalf("Default().Validate() = %v, want none", ps)
	}
	cfg, warnings := mustResolve(t, "", Flags{}, nil)
	want := Default()
	want.Server.Issuer = "http://localhost:8080"
	want.WebAuthn.RPID = "localhost"
	want.WebAuthn.Origins = []string{"http://localhost:8080"}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Resolve with nothing = %+v, want %+v", cfg, want)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings = %v, want none", warnings)
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	const file = `
server:
  listen: 0.0.0.0:9000
  issuer: https://sso.example.com/
  trusted_proxies:
    - 10.0.0.0/8
    - 192.0.2.1
storage:
  max_open_conns: 5
log:
  format: json
sessions:
  idle_timeout: 30m
password:
  argon2:
    memory_kib: 65536
`
	tests := []struct {
		name    string
		file    string
		flags   Flags
		environ []string
		check   func(t *testing.T, c Config)
	}{
		{
			name: "ok/policy-geoip-api",
			file: "policy:\n  files: [policies/, extra.yml]\ngeoip:\n  database: /data/GeoLite2-Country.mmdb\napi:\n  token: " + strings.Repeat("t", 40) + "\n",
			check: func(t *testing.T, c Config) {
				if want := []string{"policies/", "extra.yml"}; !reflect.DeepEqual(c.Policy.Files, want) {
					t.Errorf("policy.files = %q, want %q", c.Policy.Files, want)
				}
				if c.GeoIP.Database != "/data/GeoLite2-Country.mmdb" || c.API.Token != strings.Repeat("t", 40) {
					t.Errorf("geoip.database = %q, api.token = %q", c.GeoIP.Database, c.API.Token)
				}
			},
		},
		{
			name: "ok/policy-geoip-api-from-env",
			file: "policy:\n  files: [ignored.yaml]\n",
			environ: []string{"STEPGATE_POLICY_FILES=a.yaml, dir/", "STEPGATE_GEOIP_DATABASE=geo.mmdb",
				"STEPGATE_API_TOKEN=" + strings.Repeat("e", 32)},
			check: func(t *testing.T, c Config) {
				if want := []string{"a.yaml", "dir/"}; !reflect.DeepEqual(c.Policy.Files, want) {
					t.Errorf("policy.files = %q, want %q", c.Policy.Files, want)
				}
				if c.GeoIP.Database != "geo.mmdb" || c.API.Token != strings.Repeat("e", 32) {
					t.Errorf("geoip.database = %q, api.token = %q", c.GeoIP.Database, c.API.Token)
				}
			},
		},
		{
			name: "ok/file-overrides-defaults",
			file: file,
			check: func(t *testing.T, c Config) {
				want := Default()
				want.Server.Listen = "0.0.0.0:9000"
				want.Server.Issuer = "https://sso.example.com"
				want.Server.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.1"}
				want.Storage.MaxOpenConns = 5
				want.Log.Format = "json"
				want.Sessions.IdleTimeout = Duration(30 * time.Minute)
				want.Password.Argon2.MemoryKiB = 65536
				want.WebAuthn.RPID = "sso.example.com"
				want.WebAuthn.Origins = []string{"https://sso.example.com"}
				if !reflect.DeepEqual(c, want) {
					t.Errorf("got  %+v\nwant %+v", c, want)
				}
			},
		},
		{
			name:  "ok/flags-override-file",
			file:  file,
			flags: Flags{Listen: "127.0.0.1:7000", DataDir: "/var/lib/sg", Issuer: "https://other.example", LogFormat: "text"},
			check: func(t *testing.T, c Config) {
				got := []string{c.Server.Listen, c.Server.DataDir, c.Server.Issuer, c.Log.Format}
				want := []string{"127.0.0.1:7000", "/var/lib/sg", "https://other.example", "text"}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got %q, want %q", got, want)
				}
			},
		},
		{
			name:  "ok/env-overrides-flags",
			file:  file,
			flags: Flags{Listen: "127.0.0.1:7000", LogFormat: "text"},
			environ: []string{
				"STEPGATE_SERVER_LISTEN=127.0.0.1:7001",
				"STEPGATE_LOG_FORMAT=json",
				"STEPGATE_SESSIONS_IDLE_TIMEOUT=90s",
				"STEPGATE_PASSWORD_ARGON2_MEMORY_KIB=20000",
				"STEPGATE_SERVER_TRUSTED_PROXIES=172.16.0.0/12, ::1,",
				"STEPGATE_STORAGE_DSN=postgres://u:p@db/stepgate",
			},
			check: func(t *testing.T, c Config) {
				if c.Server.Listen != "127.0.0.1:7001" || c.Log.Format != "json" {
					t.Errorf("listen, format = %q, %q; want env values", c.Server.Listen, c.Log.Format)
				}
				if c.Sessions.IdleTimeout.D() != 90*time.Second {
					t.Errorf("idle_timeout = %s, want 1m30s", c.Sessions.IdleTimeout)
				}
				if c.Password.Argon2.MemoryKiB != 20000 {
					t.Errorf("memory_kib = %d, want 20000", c.Password.Argon2.MemoryKiB)
				}
				if want := []string{"172.16.0.0/12", "::1"}; !reflect.DeepEqual(c.Server.TrustedProxies, want) {
					t.Errorf("trusted_proxies = %q, want %q", c.Server.TrustedProxies, want)
				}
				if c.StorageKind() != "postgres" {
					t.Errorf("StorageKind = %q, want postgres", c.StorageKind())
				}
			},
		},
		{
			name:    "ok/env-aliases",
			flags:   Flags{Listen: "127.0.0.1:7000"},
			environ: []string{"STEPGATE_LISTEN=127.0.0.1:7002", "STEPGATE_ISSUER=https://a.example", "STEPGATE_DATA_DIR=/data", "STEPGATE_LOG_LEVEL=debug"},
			check: func(t *testing.T, c Config) {
				got := []string{c.Server.Listen, c.Server.Issuer, c.Server.DataDir, c.Log.Level}
				want := []string{"127.0.0.1:7002", "https://a.example", "/data", "debug"}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got %q, want %q", got, want)
				}
			},
		},
		{
			name:    "ok/env-long-and-alias-agree",
			environ: []string{"STEPGATE_LISTEN=127.0.0.1:7003", "STEPGATE_SERVER_LISTEN=127.0.0.1:7003"},
			check: func(t *testing.T, c Config) {
				if c.Server.Listen != "127.0.0.1:7003" {
					t.Errorf("listen = %q", c.Server.Listen)
				}
			},
		},
		{
			name:  "ok/issuer-derived-from-listen-flag",
			flags: Flags{Listen: "127.0.0.1:9123"},
			check: func(t *testing.T, c Config) {
				if c.Server.Issuer != "http://localhost:9123" {
					t.Errorf("issuer = %q, want http://localhost:9123", c.Server.Issuer)
				}
			},
		},
		{
			name:  "ok/issuer-trailing-slashes-trimmed",
			flags: Flags{Issuer: "https://sso.example.com/auth//"},
			check: func(t *testing.T, c Config) {
				if c.Server.Issuer != "https://sso.example.com/auth" {
					t.Errorf("issuer = %q", c.Server.Issuer)
				}
			},
		},
		{
			name: "ok/null-values-keep-defaults",
			file: "server:\nstorage:\n  dsn:\n  max_open_conns: ~\n",
			check: func(t *testing.T, c Config) {
				if c.Storage.MaxOpenConns != 20 || c.Server.Listen != "127.0.0.1:8080" {
					t.Errorf("defaults lost: %+v", c)
				}
			},
		},
		{
			name: "ok/comments-only",
			file: "# nothing here yet\n",
			check: func(t *testing.T, c Config) {
				if c.Log.Format != "text" {
					t.Errorf("format = %q", c.Log.Format)
				}
			},
		},
		{
			name: "ok/explicit-document-markers",
			file: "---\nlog:\n  level: warn\n...\n---\n",
			check: func(t *testing.T, c Config) {
				if c.Log.Level != "warn" {
					t.Errorf("level = %q", c.Log.Level)
				}
			},
		},
		{
			name: "ok/anchors-and-aliases",
			file: "storage:\n  busy_timeout: &t 7s\n  connect_timeout: *t\n",
			check: func(t *testing.T, c Config) {
				if c.Storage.ConnectTimeout.D() != 7*time.Second {
					t.Errorf("connect_timeout = %s", c.Storage.ConnectTimeout)
				}
			},
		},
		{
			name: "ok/yaml-integer-forms",
			file: "password:\n  argon2:\n    memory_kib: 0x8000\n    time: 3\n",
			check: func(t *testing.T, c Config) {
				if c.Password.Argon2.MemoryKiB != 0x8000 || c.Password.Argon2.Time != 3 {
					t.Errorf("argon2 = %+v", c.Password.Argon2)
				}
			},
		},
		{
			name:    "ok/empty-env-list-clears-file-list",
			file:    file,
			environ: []string{"STEPGATE_SERVER_TRUSTED_PROXIES="},
			check: func(t *testing.T, c Config) {
				if len(c.Server.TrustedProxies) != 0 {
					t.Errorf("trusted_proxies = %q, want empty", c.Server.TrustedProxies)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, warnings := mustResolve(t, tt.file, tt.flags, tt.environ)
			if len(warnings) != 0 {
				t.Errorf("warnings = %q, want none", warnings)
			}
			tt.check(t, cfg)
		})
	}
}

func TestResolveEmptyFile(t *testing.T) {
	t.Parallel()
	cfg, _, err := Resolve(writeFile(t, ""), Flags{}, nil)
	if err != nil {
		t.Fatalf("empty file: %v", err)
	}
	if cfg.Server.Listen != Default().Server.Listen {
		t.Errorf("listen = %q, want default", cfg.Server.Listen)
	}
}

func TestResolveMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, _, err := Resolve(path, Flags{}, nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
}

func TestResolveProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		file    string
		flags   Flags
		environ []string
		want    []Problem
	}{
		{
			name: "fail/three-mistakes",
			file: "server:\n  listen: 127.0.0.1:8080\n  listn: x\nlog:\n  format: xml\nsessions:\n  idle_timeout: soon\n",
			want: []Problem{
				{Path: "server.listn", Line: 3, Message: `unknown key; did you mean "listen"?`},
				{Path: "sessions.idle_timeout", Line: 7, Message: `"soon" is not a duration; write it like 30s, 15m or 8h`},
				{Path: "log.format", Line: 5, Message: `"xml" is not a log format; use text or json`},
			},
		},
		{
			name: "fail/policy-keys",
			file: "policy:\n  file: x.yaml\napi:\n  token: tooshort\n",
			want: []Problem{
				{Path: "policy.file", Line: 2, Message: `unknown key; did you mean "files"?`},
				{Path: "api.token", Line: 4, Message: "is 8 characters long; use at least 32 random characters, e.g. the output of: openssl rand -base64 32"},
			},
		},
		{
			name: "fail/policy-environment-keys",
			file: "policy:\n  environments:\n    staging:\n      file: [s.yaml]\n",
			want: []Problem{{Path: "policy.environments.staging.file", Line: 4, Message: `unknown key; did you mean "files"?`}},
		},
		{
			name: "fail/unknown-key",
			file: "storage:\n  dns: sqlite\n",
			want: []Problem{{Path: "storage.dns", Line: 2, Message: `unknown key; did you mean "dsn"?`}},
		},
		{
			name: "fail/unknown-key-case",
			file: "Server: {}\n",
			want: []Problem{{Path: "Server", Line: 1, Message: `unknown key; did you mean "server"?`}},
		},
		{
			name: "fail/unknown-key-no-suggestion",
			file: "log:\n  colour: true\n",
			want: []Problem{{Path: "log.colour", Line: 2, Message: "unknown key; known keys here are format, level"}},
		},
		{
			name: "fail/duplicate-key",
			file: "log:\n  level: info\n  level: debug\n",
			want: []Problem{{Path: "log.level", Line: 3, Message: "duplicate key (first set on line 2); keep only one"}},
		},
		{
			name: "fail/multiple-documents",
			file: "log:\n  level: info\n---\nlog:\n  level: debug\n",
			want: []Problem{{Line: 3, Message: "a second YAML document starts here; keep the whole configuration in one document (remove the ---)"}},
		},
		{
			name: "fail/top-level-not-mapping",
			file: "- server\n",
			want: []Problem{{Line: 1, Message: "the top level must be a mapping of sections (server:, storage:, log:, sessions:, password:, oidc:, policy:, geoip:, api:, secrets:, totp:, webauthn:, otp:, gateway:, risk:, signin_log:, registration:, elevation:, databases:), not a list"}},
		},
		{
			name: "fail/section-not-mapping",
			file: "storage: postgres://admin:hunter2@db/x\n",
			want: []Problem{{Path: "storage", Line: 1, Message: "must be a mapping of keys (dsn, busy_timeout, connect_timeout, max_open_conns), not a single value; indent its keys under storage:"}},
		},
		{
			name: "fail/syntax-error",
			file: "log:\n\tlevel: info\n",
			want: []Problem{{Line: 2, Message: "invalid YAML: found character that cannot start any token"}},
		},
		{
			name: "fail/wrong-types",
			file: "server:\n  listen: [a]\n  trusted_proxies: 10.0.0.0/8\nstorage:\n  max_open_conns: \"5\"\npassword:\n  argon2:\n    threads: 300\n    time: -1\n",
			want: []Problem{
				{Path: "server.listen", Line: 2, Message: "must be a single value, not a list"},
				{Path: "server.trusted_proxies", Line: 3, Message: `must be a list, not a single value; write it like [10.0.0.0/8, 192.0.2.1] or one "- item" per line`},
				{Path: "storage.max_open_conns", Line: 5, Message: `"5" is not a whole number; write digits only, like 20`},
				{Path: "password.argon2.threads", Line: 8, Message: "300 is out of range; use a whole number from 0 to 255"},
				{Path: "password.argon2.time", Line: 9, Message: "-1 is out of range; use a whole number from 0 to 4294967295"},
			},
		},
		{
			name: "fail/days-are-not-a-duration",
			file: "sessions:\n  lifetime: 7d\n",
			want: []Problem{{Path: "sessions.lifetime", Line: 2, Message: `"7d" is not a duration; write it like 30s, 15m or 8h (there is no d unit: write 168h for 7 days)`}},
		},
		{
			name: "fail/merge-key",
			file: "base: &b {level: info}\nlog:\n  <<: *b\n",
			want: []Problem{
				{Path: "base", Line: 1, Message: "unknown key; known keys here are server, storage, log, sessions, password, oidc, policy, geoip, api, secrets, totp, webauthn, otp, gateway, risk, signin_log, registration, elevation, databases"},
				{Path: "log.<<", Line: 3, Message: "merge keys are not supported; write the keys out in full"},
			},
		},
		{
			name: "fail/trusted-proxy-index-and-line",
			file: "server:\n  trusted_proxies:\n    - 10.0.0.0/8\n    - 10.0.0.0/33\n",
			want: []Problem{{Path: "server.trusted_proxies[1]", Line: 4, Message: `"10.0.0.0/33" is not an IP address or CIDR; write it like 10.0.0.0/8 or 192.0.2.1`}},
		},
		{
			name: "fail/dsn-password-redacted",
			file: "storage:\n  dsn: mysql://admin:hunter2@db/x\n",
			want: []Problem{{Path: "storage.dsn", Line: 2, Message: `"mysql://admin:xxxxx@db/x" is not a supported storage DSN; use sqlite (the default) or postgres://user:pass@host/db`}},
		},
		{
			name:    "fail/unparsable-postgres-dsn-redacted",
			environ: []string{"STEPGATE_STORAGE_DSN=postgres://admin:hun%zzter2@db/x"},
			want:    []Problem{{Path: "storage.dsn", Message: `"postgres://admin:xxxxx@db/x" is not a valid PostgreSQL URL; write it like postgres://user:pass@host:5432/db (percent-encode special characters in the password) (set by STEPGATE_STORAGE_DSN)`}},
		},
		{
			name:    "fail/malformed-env",
			environ: []string{"STEPGATE_SESSIONS_IDLE_TIMEOUT=soon", "STEPGATE_STORAGE_MAX_OPEN_CONNS=many"},
			want: []Problem{
				{Path: "env STEPGATE_STORAGE_MAX_OPEN_CONNS", Message: `"many" is not a whole number; write digits only, like 20`},
				{Path: "env STEPGATE_SESSIONS_IDLE_TIMEOUT", Message: `"soon" is not a duration; write it like 30s, 15m or 8h`},
			},
		},
		{
			name:    "fail/env-alias-conflict",
			environ: []string{"STEPGATE_LISTEN=:1", "STEPGATE_SERVER_LISTEN=:2"},
			want:    []Problem{{Path: "env STEPGATE_LISTEN", Message: "conflicts with STEPGATE_SERVER_LISTEN, which is set to a different value; set only one of them"}},
		},
		{
			name:  "fail/flag-value-names-its-flag",
			file:  "server:\n  listen: 127.0.0.1:8080\n",
			flags: Flags{Listen: "localhost"},
			want:  []Problem{{Path: "server.listen", Message: `"localhost" is not host:port; write it like 127.0.0.1:8080, [::1]:8080 or :8080 (all interfaces) (set by flag --listen)`}},
		},
		{
			name:    "fail/env-replaces-file-list",
			file:    "server:\n  trusted_proxies: [10.0.0.0/8, 10.0.0.1]\n",
			environ: []string{"STEPGATE_SERVER_TRUSTED_PROXIES=10.0.0.0/8,nope"},
			want:    []Problem{{Path: "server.trusted_proxies[1]", Message: `"nope" is not an IP address or CIDR; write it like 10.0.0.0/8 or 192.0.2.1 (set by STEPGATE_SERVER_TRUSTED_PROXIES)`}},
		},
		{
			name: "fail/lifetime-below-idle-timeout",
			file: "sessions:\n  idle_timeout: 8h\n  lifetime: 1h\n",
			want: []Problem{{Path: "sessions.lifetime", Line: 3, Message: "must be at least sessions.idle_timeout (8h0m0s); raise lifetime or lower idle_timeout"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := problemsOf(t, tt.file, tt.flags, tt.environ)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n got  %q\n want %q", got, tt.want)
			}
			for _, p := range got {
				if strings.Contains(p.String(), "hunter2") || strings.Contains(p.String(), "hun%zzter2") {
					t.Errorf("problem leaks a password: %s", p)
				}
			}
		})
	}
}

func TestResolveEnvWarnings(t *testing.T) {
	t.Parallel()
	environ := []string{
		"STEPGATE_STORAGE_DNS=sqlite",
		"STEPGATE_FROBNICATE=1",
		"STEPGATE_TEST_POSTGRES_DSN=postgres://u:p@h/db",
		"STEPGATE_REQUIRE_POSTGRES=1",
		"HOME=/root",
		"=C:=C:\\",
		"NOEQUALS",
	}
	_, warnings := mustResolve(t, "", Flags{}, environ)
	want := []string{
		"unknown environment variable STEPGATE_FROBNICATE ignored",
		"unknown environment variable STEPGATE_STORAGE_DNS ignored; did you mean STEPGATE_STORAGE_DSN?",
	}
	if !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings:\n got  %q\n want %q", warnings, want)
	}
}

func TestErrorsError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		errs Errors
		want string
	}{
		{
			name: "ok/file",
			errs: Errors{File: "stepgate.yaml", Problems: []Problem{
				{Path: "server.listn", Line: 3, Message: `unknown key; did you mean "listen"?`},
				{Path: "storage.dsn", Message: "bad"},
				{Line: 9, Message: "invalid YAML: oops"},
			}},
			want: "stepgate.yaml: 3 problems:\n" +
				"  server.listn (line 3): unknown key; did you mean \"listen\"?\n" +
				"  storage.dsn: bad\n" +
				"  line 9: invalid YAML: oops",
		},
		{
			name: "ok/no-file-one-problem",
			errs: Errors{Problems: []Problem{{Path: "env STEPGATE_X", Message: "bad"}}},
			want: "configuration: 1 problem:\n  env STEPGATE_X: bad",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.errs.Error(); got != tt.want {
				t.Errorf("Error():\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// TestMarshalRoundTrip checks that the schema written out by yaml.Marshal
// (durations as strings) reads back to the same configuration.
func TestMarshalRoundTrip(t *testing.T) {
	t.Parallel()
	want := Default()
	want.Server.Issuer = "https://sso.example.com"
	want.Server.TrustedProxies = []string{"10.0.0.0/8"}
	want.Sessions.IdleTimeout = Duration(90 * time.Second)
	want.WebAuthn.RPID = "sso.example.com"
	want.WebAuthn.Origins = []string{"https://sso.example.com"}
	data, err := yaml.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "idle_timeout: 1m30s") {
		t.Errorf("durations are not written as strings:\n%s", data)
	}
	got, _ := mustResolve(t, string(data), Flags{}, nil)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got  %+v\n want %+v", got, want)
	}
	var plain Config
	if err := yaml.Unmarshal(data, &plain); err != nil || !reflect.DeepEqual(plain, want) {
		t.Errorf("yaml.Unmarshal = %+v, %v; want %+v", plain, err, want)
	}
}

// TestExampleFile keeps examples/stepgate.yaml loadable.
func TestExampleFile(t *testing.T) {
	t.Parallel()
	cfg, warnings, err := Resolve("../../examples/stepgate.yaml", Flags{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings = %q", warnings)
	}
	if reflect.DeepEqual(cfg, Default()) {
		t.Error("example sets nothing; it should show the keys")
	}
}

// TestDocsCoverEveryKey keeps docs/configuration.md in step with the
// schema: every key path and its variable must be documented.
func TestDocsCoverEveryKey(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, l := range leaves() {
		for _, s := range []string{"`" + l.path + "`", "`" + l.env + "`"} {
			if !strings.Contains(doc, s) {
				t.Errorf("docs/configuration.md does not mention %s", s)
			}
		}
	}
	for _, alias := range envAliases() {
		if !strings.Contains(doc, "`"+alias+"`") {
			t.Errorf("docs/configuration.md does not mention %s", alias)
		}
	}
}

// TestEveryLeafSettableFromEnv guards the reflection: a field of a type
// setText does not handle would be unreachable from the environment.
func TestEveryLeafSettableFromEnv(t *testing.T) {
	t.Parallel()
	for _, l := range leaves() {
		t.Run("ok/"+l.path, func(t *testing.T) {
			t.Parallel()
			c := Default()
			v := reflect.ValueOf(&c).Elem().FieldByIndex(l.index)
			text := "1s"
			if v.Kind() == reflect.Bool {
				text = "true"
			}
			if err := setText(v, text); err != nil && !strings.Contains(err.Error(), "whole number") {
				t.Errorf("setText: %v", err)
			}
		})
	}
}
