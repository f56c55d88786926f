package main

import (
	"io"
	"net"
	"sync"
)

// goRelay is the plainest proxy Go can be: each client connection copied
// byte for byte to a connection of its own to the upstream and back
// (read and write both ways), reading nothing. Beside the gateway it shows what
// a Go relay costs on this machine before any statement is read.
type goRelay struct {
	ln net.Listener
	wg sync.WaitGroup
}

func startGoRelay(upstream string) (*goRelay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &goRelay{ln: ln}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.relay(c, upstream)
			}()
		}
	}()
	return r, nil
}

func (r *goRelay) relay(c net.Conn, upstream string) {
	defer c.Close()
	up, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		copyPlain(c, up)
		_ = c.Close()
		close(done)
	}()
	copyPlain(up, c)
	_ = up.Close()
	<-done
}

// copyPlain copies with read and write into a buffer, as a proxy that
// reads what it relays does (io.Copy between two TCP connections would
// splice through a pipe instead).
func copyPlain(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	_, _ = io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
}

func (r *goRelay) addr() string { return r.ln.Addr().String() }

// stop closes the listener and waits for the relayed connections, which
// end when pgbench's do.
func (r *goRelay) stop() {
	_ = r.ln.Close()
	r.wg.Wait()
}
