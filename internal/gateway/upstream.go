package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"
)

// connPool keeps alive the plain-HTTP connections of a route's direct
// path (see serveDirect): the request is written and the answer read on
// the handler's own goroutine. http.Transport instead gives every
// connection a reader and a writer goroutine and hands each request and
// answer between them; on loopback that hand-off costs more than the
// gateway's whole decision.
type connPool struct {
	host          string // the upstream URL's host, as the Host header carries it
	addr          string // host:port to dial
	headerTimeout time.Duration
	dialer        net.Dialer
	idle          chan *upstreamConn

	closeOnce sync.Once
	closed    chan struct{}
}

// maxIdleUpstreamConns bounds the kept-alive connections per route, as
// MaxIdleConnsPerHost does for the standard transport.
const maxIdleUpstreamConns = 256

// newConnPool returns the pool of a plain-HTTP upstream, or nil for one
// the direct path does not serve (TLS).
func newConnPool(upstream *url.URL, headerTimeout time.Duration) *connPool {
	if upstream.Scheme != "http" {
		return nil
	}
	p := &connPool{
		host: upstream.Host, addr: upstream.Host,
		headerTimeout: headerTimeout,
		dialer:        net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
		idle:          make(chan *upstreamConn, maxIdleUpstreamConns),
		closed:        make(chan struct{}),
	}
	if upstream.Port() == "" {
		p.addr = net.JoinHostPort(upstream.Hostname(), "80")
	}
	return p
}

// upstreamConn is one keep-alive connection to the upstream.
type upstreamConn struct {
	net.Conn
	raw    syscall.RawConn // nil when the connection offers none
	br     *bufio.Reader
	bw     *bufio.Writer
	reused bool

	// flushOnce is c.flushThenWait, bound once so that send allocates
	// nothing; sent and sendErr are its state during one send.
	flushOnce func(uintptr) bool
	sent      bool
	sendErr   error
}

// send writes the buffered request and waits until the answer can be
// read. Go's network poller otherwise tries a read first — which, right
// after the request left, finds nothing and costs a system call — and
// only then waits. Here the wait is armed before the request is written
// (RawConn.Read clears the connection's readiness before calling its
// function), so an answer that arrives at once is not missed, and the
// first read finds it. A wake-up with nothing to read only costs the read
// that would have been tried anyway.
func (c *upstreamConn) send() (sent bool, err error) {
	if c.raw == nil || c.br.Buffered() > 0 {
		err := c.bw.Flush()
		return err == nil, err
	}
	c.sent, c.sendErr = false, nil
	err = c.raw.Read(c.flushOnce)
	if c.sendErr != nil {
		return false, c.sendErr
	}
	return c.sent, err
}

// flushThenWait is send's RawConn.Read function: its first call writes
// the request and asks to wait; the next, after the poller reported the
// socket readable, ends the wait.
func (c *upstreamConn) flushThenWait(uintptr) bool {
	if c.sent {
		return true
	}
	c.sendErr = c.bw.Flush()
	c.sent = c.sendErr == nil
	return !c.sent
}

// errNoAnswer means the connection ended before the upstream sent a byte
// of its answer: a kept-alive connection the upstream had closed.
var errNoAnswer = errors.New("the upstream closed the connection without answering")

// roundTrip sends a request with no body, written by write, and returns
// the answer; the body reads from the connection, which returns to the
// pool once the body is read to its end. Only requests safe to send
// twice come here (GET and HEAD), so one that meets a connection the
// upstream closed while it sat idle is sent again on a fresh one.
func (p *connPool) roundTrip(req *http.Request, write func(*bufio.Writer) error) (*http.Response, error) {
	for {
		c, err := p.conn(req.Context())
		if err != nil {
			return nil, err
		}
		resp, err := p.exchange(c, req, write)
		if err == nil {
			return resp, nil
		}
		_ = c.Close()
		if !c.reused || !errors.Is(err, errNoAnswer) || req.Context().Err() != nil {
			return nil, err
		}
	}
}

// conn takes an idle connection or dials a new one.
func (p *connPool) conn(ctx context.Context) (*upstreamConn, error) {
	select {
	case c := <-p.idle:
		c.reused = true
		return c, nil
	default:
	}
	nc, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	c := &upstreamConn{Conn: nc, br: bufio.NewReaderSize(nc, 4<<10), bw: bufio.NewWriterSize(nc, 4<<10)}
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	c.flushOnce = c.flushThenWait
	return c, nil
}

// put keeps c for the next request, or closes it when the pool is full
// or closed.
func (p *connPool) put(c *upstreamConn) {
	select {
	case <-p.closed:
		_ = c.Close()
		return
	default:
	}
	select {
	case p.idle <- c:
	default:
		_ = c.Close()
	}
}

// Close closes the idle connections; those in use close when their
// answer ends.
func (p *connPool) Close() {
	p.closeOnce.Do(func() { close(p.closed) })
	for {
		select {
		case c := <-p.idle:
			_ = c.Close()
		default:
			return
		}
	}
}

// exchange writes the request on c and reads the answer's head.
func (p *connPool) exchange(c *upstreamConn, req *http.Request, write func(*bufio.Writer) error) (*http.Response, error) {
	// A cancelled request (the client went away) interrupts whatever
	// waits on the connection.
	stop := context.AfterFunc(req.Context(), func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	resp, err := p.head(c, req, write)
	if err != nil {
		stop()
		return nil, err
	}
	body := &upstreamBody{rc: resp.Body, c: c, pool: p, stop: stop, keep: !resp.Close}
	if resp.Body == http.NoBody {
		body.release(true)
		return resp, nil
	}
	resp.Body = body
	return resp, nil
}

// head sends the request and reads the answer's status and headers,
// skipping informational answers (100 Continue, 103 Early Hints).
func (p *connPool) head(c *upstreamConn, req *http.Request, write func(*bufio.Writer) error) (*http.Response, error) {
	if err := write(c.bw); err != nil {
		return nil, fmt.Errorf("send the request upstream: %w", noAnswer(err))
	}
	if p.headerTimeout > 0 {
		_ = c.SetReadDeadline(time.Now().Add(p.headerTimeout))
		defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	}
	if sent, err := c.send(); !sent {
		return nil, fmt.Errorf("send the request upstream: %w", noAnswer(err))
	} else if err != nil {
		return nil, fmt.Errorf("read the upstream's answer: %w", noAnswer(err))
	}
	if _, err := c.br.Peek(1); err != nil {
		return nil, fmt.Errorf("read the upstream's answer: %w", noAnswer(err))
	}
	for {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			return nil, fmt.Errorf("read the upstream's answer: %w", err)
		}
		switch {
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return nil, errors.New("the upstream switched protocols on a request that asked for no upgrade")
		case resp.StatusCode >= 200:
			return resp, nil
		}
	}
}

// noAnswer marks a connection that ended (or was reset) before the
// upstream answered, so the request may be sent again.
func noAnswer(err error) error {
	var op *net.OpError
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &op) && !op.Timeout() {
		return fmt.Errorf("%w (%w)", errNoAnswer, err)
	}
	return err
}

// upstreamBody is an answer's body read from a pooled connection. Read
// to its end, it hands the connection back; closed early, the connection
// is closed, since the rest of the answer is still in it.
type upstreamBody struct {
	rc   io.ReadCloser
	c    *upstreamConn
	pool *connPool
	stop func() bool
	keep bool
	done bool
}

func (b *upstreamBody) Read(buf []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(buf)
	switch {
	case err == io.EOF:
		b.release(true)
	case err != nil:
		b.release(false)
	}
	return n, err
}

func (b *upstreamBody) Close() error {
	if !b.done {
		b.release(false)
	}
	return nil
}

// release returns the connection to the pool when the answer was read
// whole, nothing interrupted it and neither side asked to close, and
// closes it otherwise.
func (b *upstreamBody) release(whole bool) {
	b.done = true
	interrupted := !b.stop()
	if whole && b.keep && !interrupted {
		b.pool.put(b.c)
		return
	}
	_ = b.c.Close()
}
