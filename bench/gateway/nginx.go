package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// nginxPath is Debian's nginx (packages nginx-light, nginx-core).
const nginxPath = "/usr/sbin/nginx"

// errNoNginx means nginx is not installed here.
var errNoNginx = errors.New("not installed (apt-get install nginx-light)")

// nginxExample is the nginx configuration docs/gateway.md shows (the
// forward-auth tests check that the page shows it word for word, and
// run it against real nginx).
const nginxExample = "examples/proxies/nginx.conf"

// nginxConf runs, in one nginx with worker_processes auto (one worker
// per core, as a production nginx would run):
//   - a plain reverse proxy to the upstream: no authentication,
//     keep-alive connections to the upstream, no access log;
//   - the same in front of Stepgate's gateway, which keeps the Host the
//     client sent (with its port, which the route's address has);
//   - the documented auth_request configuration (%[6]s), with loopback
//     addresses put in.
const nginxConf = `%[7]sworker_processes auto;
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
    upstream bench_app {
        server %[2]s;
        keepalive 64;
    }
    upstream bench_stepgate {
        server %[3]s;
        keepalive 64;
    }
    server {
        listen %[4]s;
        location / {
            proxy_pass http://bench_app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }
    }
    server {
        listen %[5]s;
        location / {
            proxy_pass http://bench_stepgate;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }
    }
%[6]s
}
`

// nginxAddrs are where the three servers of nginxConf listen.
type nginxAddrs struct {
	plain, gateway, authRequest string
}

// nginx is a running nginx.
type nginx struct {
	nginxAddrs
	proc *child
}

// documentedAuthRequest is the documented auth_request configuration
// read from root, with Stepgate at stepgate, the application at
// upstream, and the public name nginx.localhost:PORT of listen, as the
// forward-auth tests put them in.
func documentedAuthRequest(root, listen, stepgate, upstream string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, nginxExample)) //nolint:gosec // a file of this repository
	if err != nil {
		return "", err
	}
	_, port, _ := net.SplitHostPort(listen)
	public := "nginx.localhost:" + port
	s := string(b)
	for _, r := range [][2]string{
		{"listen 80;", "listen " + listen + ";"},
		{"server_name bank.example.com;", "server_name nginx.localhost;"},
		{"bank.example.com", public},
		{"stepgate.internal:8080", stepgate},
		{"127.0.0.1:9001", upstream},
	} {
		if !strings.Contains(s, r[0]) {
			return "", fmt.Errorf("%s no longer contains %q", nginxExample, r[0])
		}
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	return s, nil
}

// startNginx runs nginx with nginxConf, its pid file and temporary files
// under dir.
func startNginx(ctx context.Context, dir string, addrs nginxAddrs, upstream, stepgate, authRequest string) (*nginx, error) {
	if _, err := os.Stat(nginxPath); err != nil {
		return nil, errNoNginx
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n" // workers as root can use the temporary directory
	}
	conf := filepath.Join(dir, "nginx.conf")
	text := fmt.Sprintf(nginxConf, dir, upstream, stepgate, addrs.plain, addrs.gateway, authRequest, user)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(nginxPath, "-p", dir, "-c", conf, "-g", "daemon off;") //nolint:gosec // a fixed binary and a generated config
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// SIGQUIT is nginx's graceful shutdown; SIGTERM, if the harness dies,
	// its fast one: either way the master takes its workers with it.
	proc, err := startChild("nginx", cmd, syscall.SIGQUIT, syscall.SIGTERM)
	if err != nil {
		return nil, err
	}
	n := &nginx{nginxAddrs: addrs, proc: proc}
	for _, addr := range []string{addrs.plain, addrs.gateway, addrs.authRequest} {
		if err := waitListening(ctx, addr, proc, 5*time.Second); err != nil {
			proc.stop()
			log, _ := os.ReadFile(filepath.Join(dir, "error.log")) //nolint:gosec // the harness's own temporary directory
			return nil, fmt.Errorf("nginx: %w: %s", err, log)
		}
	}
	return n, nil
}
