package demo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// postgresBinGlob is where Debian and Ubuntu install PostgreSQL's server
// programs (initdb and pg_ctl are not on the PATH there).
const postgresBinGlob = "/usr/lib/postgresql/*/bin"

// FindPostgres returns the directory of the newest local PostgreSQL's
// initdb and pg_ctl, or "" when there is none: Debian's
// /usr/lib/postgresql/VERSION/bin, or the PATH.
func FindPostgres() string {
	dirs, _ := filepath.Glob(postgresBinGlob)
	slices.SortFunc(dirs, func(a, b string) int { return majorVersion(a) - majorVersion(b) })
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		dirs = append([]string{filepath.Dir(p)}, dirs...)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if isExecutable(filepath.Join(dirs[i], "initdb")) && isExecutable(filepath.Join(dirs[i], "pg_ctl")) {
			return dirs[i]
		}
	}
	return ""
}

func majorVersion(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Cluster is a private, throwaway PostgreSQL server the demo starts for
// its bank database: its own data directory, a loopback port, no Unix
// socket, password authentication with a superuser password that only
// this process knows. Stop stops it and deletes its files.
type Cluster struct {
	bin, dir string
	port     int
	password string
	// owner runs PostgreSQL's programs as the postgres system user when
	// this process is root; nil runs them as this process's user.
	owner *osUser
	// note is the file in the data directory that names a root demo's
	// cluster directory; "" when there is none.
	note string
}

// clusterDirName is the private server's directory in the demo's data
// directory.
const clusterDirName = "postgres"

// StartCluster initialises a new cluster with the programs in bin and
// starts it on a free loopback port. Its files go in dataDir/postgres,
// or, when this process is root, in a new directory under the system's
// temporary directory owned by the postgres user: PostgreSQL refuses to
// run as root, and the postgres user cannot enter a data directory only
// root may read. A cluster left by a demo that did not stop (killed) is
// stopped and deleted first.
func StartCluster(ctx context.Context, bin, dataDir string) (*Cluster, error) {
	c := &Cluster{bin: bin, password: rand.Text()}
	if os.Geteuid() == 0 {
		owner, err := lookupPostgresUser()
		if err != nil {
			return nil, err
		}
		c.owner = owner
		removeStaleTemp(ctx, bin, dataDir, owner)
		if c.dir, err = os.MkdirTemp("", tempClusterPrefix); err != nil {
			return nil, fmt.Errorf("a directory for the demo's PostgreSQL: %w", err)
		}
		if err := os.Chown(c.dir, owner.uid, owner.gid); err != nil {
			os.RemoveAll(c.dir)
			return nil, fmt.Errorf("give the demo's PostgreSQL directory to the postgres user: %w", err)
		}
		// Noted in the data directory, so the next start finds and
		// stops a cluster this run leaves behind when it is killed.
		c.note = filepath.Join(dataDir, clusterNoteFile)
		if err := os.WriteFile(c.note, []byte(c.dir), 0o600); err != nil {
			os.RemoveAll(c.dir)
			return nil, fmt.Errorf("note the demo's PostgreSQL directory: %w", err)
		}
	} else {
		c.dir = filepath.Join(dataDir, clusterDirName)
		c.removeStale(ctx)
		if err := os.MkdirAll(c.dir, 0o700); err != nil {
			return nil, fmt.Errorf("a directory for the demo's PostgreSQL: %w", err)
		}
	}
	if err := c.initdb(ctx); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	return c, nil
}

// tempClusterPrefix starts the name of a root demo's cluster directory
// under the system's temporary directory; clusterNoteFile, in the
// demo's data directory, holds its path.
const (
	tempClusterPrefix = "stepgate-demo-postgres-"
	clusterNoteFile   = "postgres-dir"
)

// removeStaleTemp stops and deletes the cluster a killed root demo left
// in the temporary directory, as its note in dataDir names it. Only a
// directory of the demo's own shape is touched: the note is a file an
// attacker able to write it could already use to do worse.
func removeStaleTemp(ctx context.Context, bin, dataDir string, owner *osUser) {
	note := filepath.Join(dataDir, clusterNoteFile)
	b, err := os.ReadFile(note) //nolint:gosec // G304: the demo's own file in its data directory
	if err != nil {
		return
	}
	dir := filepath.Clean(string(b))
	if filepath.Dir(dir) != filepath.Clean(os.TempDir()) || !strings.HasPrefix(filepath.Base(dir), tempClusterPrefix) {
		return
	}
	(&Cluster{bin: bin, dir: dir, owner: owner}).removeStale(ctx)
	os.Remove(note)
}

// removeStale stops and deletes the cluster a killed demo left behind.
func (c *Cluster) removeStale(ctx context.Context) {
	data := filepath.Join(c.dir, "data")
	if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
		_ = c.run(ctx, "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
	}
	os.RemoveAll(c.dir)
}

func (c *Cluster) initdb(ctx context.Context) error {
	pwFile := filepath.Join(c.dir, "superuser-password")
	if err := os.WriteFile(pwFile, []byte(c.password+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(pwFile)
	if err := c.own(pwFile); err != nil {
		return err
	}
	// Password authentication even on loopback: other users of this
	// machine reach 127.0.0.1 too. No fsync: the cluster is thrown away.
	if err := c.run(ctx, "initdb", "-D", filepath.Join(c.dir, "data"), "-U", "postgres", "--pwfile", pwFile,
		"--auth", "scram-sha-256", "-E", "UTF8", "--locale", "C", "--no-sync"); err != nil {
		return fmt.Errorf("create the demo's PostgreSQL cluster: %w", err)
	}
	conf := "\n# stepgate demo\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\nfsync = off\nmax_connections = 50\n"
	f, err := os.OpenFile(filepath.Join(c.dir, "data", "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(conf)
	return errors.Join(err, f.Close())
}

// start starts the server on a free loopback port, trying another port
// when one is taken between the check and the start.
func (c *Cluster) start(ctx context.Context) error {
	logFile := filepath.Clean(filepath.Join(c.dir, "server.log"))
	var err error
	for range 5 {
		if c.port, err = freeLoopbackPort(); err != nil {
			return err
		}
		err = c.run(ctx, "pg_ctl", "-D", filepath.Join(c.dir, "data"), "-l", logFile, "-w", "-t", "60",
			"-o", "-p "+strconv.Itoa(c.port), "start")
		if err == nil {
			return nil
		}
		if log, _ := os.ReadFile(logFile); !strings.Contains(string(log), "could not bind") {
			break
		}
	}
	log, _ := os.ReadFile(logFile)
	return fmt.Errorf("start the demo's PostgreSQL: %w\n%s", err, tail(string(log), 2000))
}

// URL is the superuser's connection URL.
func (c *Cluster) URL() string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword("postgres", c.password), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path: "/postgres", RawQuery: "sslmode=disable"}
	return u.String()
}

// Dir is where the cluster's files are.
func (c *Cluster) Dir() string { return c.dir }

// Stop stops the server (its sessions are ended) and deletes its files.
func (c *Cluster) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := c.run(ctx, "pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "fast", "-w", "stop")
	if err != nil {
		err = errors.Join(err, c.run(ctx, "pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop"))
	}
	err = errors.Join(err, os.RemoveAll(c.dir))
	if c.note != "" {
		os.Remove(c.note)
	}
	return err
}

// run runs one of PostgreSQL's programs as the cluster's owner. It gets
// a process group of its own, so the server pg_ctl starts does not get
// the terminal's Ctrl-C: the demo stops it after the gateway's sessions.
func (c *Cluster) run(ctx context.Context, prog string, args ...string) error {
	// G204: prog is one of PostgreSQL's programs in the directory
	// FindPostgres chose; the arguments are the demo's own.
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, prog), args...) //nolint:gosec // see above
	cmd.Dir = c.dir
	if _, err := os.Stat(c.dir); err != nil {
		cmd.Dir = ""
	}
	setOwner(cmd, c.owner)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", prog, err, tail(strings.TrimSpace(string(out)), 2000))
	}
	return nil
}

// own gives path to the cluster's owner.
func (c *Cluster) own(path string) error {
	if c.owner == nil {
		return nil
	}
	return os.Chown(path, c.owner.uid, c.owner.gid)
}

// freeLoopbackPort is a port nothing listens on at 127.0.0.1 right now.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// GatewayListen is the bank database gateway's address: PostgreSQL's
// usual gateway port 6432 when it is free, else any free loopback port.
func GatewayListen() (string, error) {
	if ln, err := net.Listen("tcp", "127.0.0.1:6432"); err == nil {
		ln.Close()
		return "127.0.0.1:6432", nil
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// errNoPostgresUser says why a root demo cannot start PostgreSQL.
var errNoPostgresUser = errors.New("PostgreSQL refuses to run as root, and this machine has no postgres user to run it as; " +
	"run the demo as another user, or give it a server: stepgate demo --with-postgres=postgres://USER@HOST:5432/postgres")
