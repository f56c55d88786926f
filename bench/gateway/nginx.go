package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// nginxPath is Debian's nginx (packages nginx-light, nginx-core).
const nginxPath = "/usr/sbin/nginx"

// errNoNginx means nginx is not installed here.
var errNoNginx = errors.New("not installed (apt-get install nginx-light)")

// nginxConf is a plain reverse proxy: no authentication, keep-alive
// connections to the upstream, no access log. worker_processes auto
// gives one worker per core, as a production nginx would run.
const nginxConf = `worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    keepalive_requests 1000000;
    upstream app {
        server %[2]s;
        keepalive 64;
    }
    server {
        listen %[3]s;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }
    }
}
`

// nginx is a running nginx.
type nginx struct {
	addr string
	cmd  *exec.Cmd
}

// startNginx runs nginx in front of upstream on a free loopback port,
// with its configuration, pid file and temporary files under dir.
func startNginx(dir, upstream string) (*nginx, error) {
	if _, err := os.Stat(nginxPath); err != nil {
		return nil, errNoNginx
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, dir, upstream, addr), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(nginxPath, "-p", dir, "-c", conf, "-g", "daemon off;") //nolint:gosec // a fixed binary and a generated config
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	n := &nginx{addr: addr, cmd: cmd}
	for range 100 {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			_ = c.Close()
			return n, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.stop()
	log, _ := os.ReadFile(filepath.Join(dir, "error.log")) //nolint:gosec // the harness's own temporary directory
	return nil, fmt.Errorf("nginx did not start listening on %s: %s", addr, log)
}

// stop asks nginx to shut down gracefully (SIGQUIT), and kills it if it
// has not within five seconds.
func (n *nginx) stop() {
	_ = n.cmd.Process.Signal(syscall.SIGQUIT)
	done := make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = n.cmd.Process.Kill()
		<-done
	}
}

// freePort returns a loopback address nothing listens on right now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
