package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stepgate/stepgate/bench/internal/rig"
)

// benchDB is the database's name everywhere: on PostgreSQL, in
// PgBouncer's [databases] and as the gateway's database (the audience of
// its tokens), so pgbench connects to each target alike.
const benchDB = "bench"

// pgUser is the PostgreSQL superuser initdb makes; the cluster trusts
// loopback connections, so it has no password.
const pgUser = "postgres"

// server is a process the harness started and stops.
type server struct {
	name string
	addr string // 127.0.0.1:PORT
	cmd  *exec.Cmd
}

// stop asks the server to shut down (SIGINT: PostgreSQL's fast shutdown,
// PgBouncer's safe shutdown) and kills it after ten seconds.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// pgBin is the newest installed PostgreSQL's bin directory.
func pgBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return va - vb
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "pgbench")); err == nil {
			return dirs[i], nil
		}
	}
	return "", errors.New("no PostgreSQL with pgbench under /usr/lib/postgresql: install postgresql and postgresql-contrib (scripts/install-deps.sh postgresql)")
}

// startPostgres makes a cluster under dir and runs it in the foreground
// (so it dies with the harness) on a free loopback port, with the same
// settings as the test suite's throwaway cluster: durability off, which
// every target shares. With certFile and keyFile it also speaks TLS.
func startPostgres(bin, dir string, as *owner, certFile, keyFile string) (*server, error) {
	data := filepath.Join(dir, "data")
	if err := as.mkdir(dir); err != nil {
		return nil, err
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", pgUser, "--auth=trust", "-E", "UTF8", "--locale=C") //nolint:gosec // a fixed binary
	as.run(initdb)
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	addr, err := rig.FreePort()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	args := []string{"-D", data, "-c", "listen_addresses=127.0.0.1", "-p", port, "-k", dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200"}
	if certFile != "" {
		for _, f := range []struct{ from, to string }{{certFile, "server.crt"}, {keyFile, "server.key"}} {
			if err := as.copyFile(f.from, filepath.Join(data, f.to)); err != nil {
				return nil, err
			}
		}
		args = append(args, "-c", "ssl=on")
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...) //nolint:gosec // a fixed binary
	as.run(cmd)
	logFile, err := os.Create(filepath.Join(dir, "server.log")) //nolint:gosec // the harness's own temporary directory
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	s := &server{name: "postgres", addr: addr, cmd: cmd}
	if err := waitReady(filepath.Join(bin, "pg_isready"), addr); err != nil {
		s.stop()
		log, _ := os.ReadFile(filepath.Join(dir, "server.log")) //nolint:gosec // the harness's own temporary directory
		return nil, fmt.Errorf("postgres: %w: %s", err, log)
	}
	return s, nil
}

// waitReady waits until a PostgreSQL server (or a pooler) at addr accepts
// connections.
func waitReady(pgIsReady, addr string) error {
	host, port, _ := net.SplitHostPort(addr)
	for range 300 {
		if exec.Command(pgIsReady, "-q", "-h", host, "-p", port, "-U", pgUser, "-d", benchDB).Run() == nil { //nolint:gosec // a fixed binary
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not accepting connections on %s after 15s", addr)
}

// initBench creates the database and pgbench's tables at scale.
func initBench(bin, addr string, scale int) error {
	host, port, _ := net.SplitHostPort(addr)
	steps := [][]string{
		{filepath.Join(bin, "createdb"), "-h", host, "-p", port, "-U", pgUser, benchDB},
		{filepath.Join(bin, "pgbench"), "-i", "-q", "-s", strconv.Itoa(scale), "-h", host, "-p", port, "-U", pgUser, benchDB},
	}
	for _, argv := range steps {
		cmd := exec.Command(argv[0], argv[1:]...) //nolint:gosec // fixed binaries
		cmd.Env = append(os.Environ(), "PGSSLMODE=disable")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", filepath.Base(argv[0]), err, out)
		}
	}
	return nil
}

// pgbouncerPath is Debian's PgBouncer (package pgbouncer).
const pgbouncerPath = "/usr/sbin/pgbouncer"

// errNoPgBouncer means PgBouncer is not installed here.
var errNoPgBouncer = errors.New("not installed (scripts/install-deps.sh pgbouncer, or make bench-db)")

// pgbouncerConf pools in session mode, PgBouncer's default and the mode
// that keeps a client's transactions, prepared statements and settings
// its own, as the gateway does: one server connection per client for the
// client's whole session.
const pgbouncerConf = `[databases]
%[1]s = host=127.0.0.1 port=%[2]s dbname=%[1]s user=%[3]s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %[4]s
unix_socket_dir =
auth_type = trust
auth_file = %[5]s/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 64
logfile = %[5]s/pgbouncer.log
pidfile = %[5]s/pgbouncer.pid
log_connections = 0
log_disconnections = 0
%[6]s`

// startPgBouncer runs PgBouncer in front of the PostgreSQL at upstream,
// with its files under dir; with certFile and keyFile it requires TLS of
// its clients.
func startPgBouncer(dir string, as *owner, upstream, certFile, keyFile string) (*server, error) {
	if _, err := os.Stat(pgbouncerPath); err != nil {
		return nil, errNoPgBouncer
	}
	if err := as.mkdir(dir); err != nil {
		return nil, err
	}
	addr, err := rig.FreePort()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	_, upPort, _ := net.SplitHostPort(upstream)
	tlsConf := ""
	if certFile != "" {
		if err := as.copyFile(certFile, filepath.Join(dir, "client.crt")); err != nil {
			return nil, err
		}
		if err := as.copyFile(keyFile, filepath.Join(dir, "client.key")); err != nil {
			return nil, err
		}
		tlsConf = fmt.Sprintf("client_tls_sslmode = require\nclient_tls_cert_file = %[1]s/client.crt\nclient_tls_key_file = %[1]s/client.key\n", dir)
	}
	files := map[string]string{
		"userlist.txt":  fmt.Sprintf("%q \"\"\n", pgUser),
		"pgbouncer.ini": fmt.Sprintf(pgbouncerConf, benchDB, upPort, pgUser, port, dir, tlsConf),
		"pgbouncer.log": "",
	}
	for name, content := range files {
		if err := as.writeFile(filepath.Join(dir, name), content); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(pgbouncerPath, filepath.Join(dir, "pgbouncer.ini")) //nolint:gosec // a fixed binary and a generated config
	as.run(cmd)                                                             // its log goes to pgbouncer.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pgbouncer: %w", err)
	}
	s := &server{name: "pgbouncer", addr: addr, cmd: cmd}
	for range 200 {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			_ = c.Close()
			return s, nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	s.stop()
	log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log")) //nolint:gosec // the harness's own temporary directory
	return nil, fmt.Errorf("pgbouncer did not start listening on %s: %s", addr, log)
}

// processCPUOf is the CPU time (user and system) process pid has used,
// from /proc; zero where there is none.
func processCPUOf(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold blanks: count fields
	// after its closing parenthesis. utime and stime are fields 14 and
	// 15 of the line, 12 and 13 after it.
	_, rest, ok := strings.Cut(string(b), ") ")
	fields := strings.Fields(rest)
	if !ok || len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clockTicks
}
