package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
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

// connPool keeps alive the connections to a route's upstream. Every
// proxied request is written and its answer read on the handler's own
// goroutine (a request body is written beside it, by one goroutine of
// its own). http.Transport instead gives every connection a reader and a
// writer goroutine and hands each request and answer between them; on
// loopback that hand-off costs more than the gateway's whole decision.
type connPool struct {
	host          string      // the upstream URL's host, as the Host header carries it
	addr          string      // host:port to dial
	tls           *tls.Config // nil for a plain-HTTP upstream
	headerTimeout time.Duration
	dialer        net.Dialer
	idle          chan *upstreamConn

	closeOnce sync.Once
	closed    chan struct{}
}

// maxIdleUpstreamConns bounds the kept-alive connections per route, as
// MaxIdleConnsPerHost does for the standard transport.
const maxIdleUpstreamConns = 256

// maxInformational bounds the informational answers (103 Early Hints)
// read before the final one, as the standard transport does: an
// upstream cannot hold a request open by sending them forever.
const maxInformational = 5

// newConnPool returns the pool of the upstream at u (http or https).
func newConnPool(u *url.URL, headerTimeout time.Duration) *connPool {
	p := &connPool{
		host: u.Host, addr: u.Host,
		headerTimeout: headerTimeout,
		dialer:        net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
		idle:          make(chan *upstreamConn, maxIdleUpstreamConns),
		closed:        make(chan struct{}),
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
		// HTTP/1.1 only: the pool speaks it on every connection.
		p.tls = &tls.Config{ServerName: u.Hostname(), NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
	}
	if u.Port() == "" {
		p.addr = net.JoinHostPort(u.Hostname(), port)
	}
	return p
}

// upstreamConn is one keep-alive connection to the upstream.
type upstreamConn struct {
	net.Conn
	// raw is the TCP connection's, for the wait in send (nil under TLS,
	// or when the connection offers none) and for alive (TLS too).
	raw, probe syscall.RawConn
	br         *bufio.Reader
	bw         *bufio.Writer
	reused     bool

	// flushOnce is c.flushThenWait, bound once so that send allocates
	// nothing; sent and sendErr are its state during one send. peekOnce
	// and idle are the same for alive.
	flushOnce func(uintptr) bool
	sent      bool
	sendErr   error
	peekOnce  func(uintptr) bool
	idle      bool
	// interruptOnce is c.interrupt, bound once for the same reason.
	interruptOnce func()

	// bodyDone is closed when the request body's writer returns, with
	// bodyErr set; nil when the request has no body.
	bodyDone chan struct{}
	bodyErr  error
	// mu guards headRead: whether the answer's head was read, after
	// which the body's writer no longer arms the header timeout.
	mu       sync.Mutex
	headRead bool
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

// roundTrip sends o upstream and returns the answer; the body reads from
// the connection, which returns to the pool once the body is read to its
// end. A request that may be sent twice (a read without a body) and
// meets a connection the upstream closed after alive looked at it is
// sent again on another; any other request is never sent twice.
func (p *connPool) roundTrip(o *outgoing) (*http.Response, error) {
	ctx := o.r.Context()
	for {
		c, err := p.conn(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := p.exchange(c, o)
		if err == nil {
			return resp, nil
		}
		_ = c.Close()
		if !o.replayable || !c.reused || !errors.Is(err, errNoAnswer) || ctx.Err() != nil {
			return nil, err
		}
	}
}

// conn takes an idle connection that is still alive, or dials a new one.
func (p *connPool) conn(ctx context.Context) (*upstreamConn, error) {
	for {
		select {
		case c := <-p.idle:
			if !c.alive() {
				_ = c.Close()
				continue
			}
			c.reused = true
			return c, nil
		default:
		}
		return p.dial(ctx)
	}
}

func (p *connPool) dial(ctx context.Context) (*upstreamConn, error) {
	nc, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	c := &upstreamConn{Conn: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		c.probe, _ = sc.SyscallConn()
	}
	if p.tls == nil {
		c.raw = c.probe
	} else {
		tc := tls.Client(nc, p.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, fmt.Errorf("TLS handshake with the upstream: %w", err)
		}
		c.Conn = tc
	}
	c.br, c.bw = bufio.NewReaderSize(c.Conn, 4<<10), bufio.NewWriterSize(c.Conn, 4<<10)
	c.flushOnce, c.peekOnce, c.interruptOnce = c.flushThenWait, c.peek, c.interrupt
	return c, nil
}

// interrupt ends whatever waits on c at once: a deadline in the past.
func (c *upstreamConn) interrupt() { _ = c.SetDeadline(time.Unix(1, 0)) }

// alive reports whether an idle connection can take a request: the
// upstream has not closed it, and has sent nothing since its last
// answer. Bytes an upstream sends unasked would otherwise be read as the
// answer to the next request on the connection — another user's
// (response queue poisoning) —, and a request that must not be sent
// twice would be lost on a closed one.
func (c *upstreamConn) alive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	if c.probe == nil {
		return true
	}
	c.idle = false
	return c.probe.Read(c.peekOnce) == nil && c.idle
}

// peek is alive's RawConn.Read function.
func (c *upstreamConn) peek(fd uintptr) bool {
	c.idle = nothingToRead(fd)
	return true
}

// put keeps c for the next request, or closes it when the pool is full
// or closed, or when the upstream sent more than its answer (bytes that
// would be read as the next request's answer).
func (p *connPool) put(c *upstreamConn) {
	if c.br.Buffered() > 0 {
		_ = c.Close()
		return
	}
	c.bodyDone, c.bodyErr, c.headRead = nil, nil, false
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

// exchange writes the request on c and reads the answer's head. A 101
// answer's body is the switched connection itself (switchedConn).
func (p *connPool) exchange(c *upstreamConn, o *outgoing) (*http.Response, error) {
	// A cancelled request (the client went away) interrupts whatever
	// waits on the connection.
	stop := context.AfterFunc(o.r.Context(), c.interruptOnce)
	resp, err := p.head(c, o)
	if err != nil {
		stop()
		return nil, err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		stop()
		resp.Body = switchedConn{c}
		return resp, nil
	}
	body := &upstreamBody{rc: resp.Body, c: c, pool: p, stop: stop, keep: !resp.Close}
	if resp.Body == http.NoBody {
		body.release(true)
		return resp, nil
	}
	resp.Body = body
	return resp, nil
}

// head sends the request and reads the answer's status and headers.
// Informational answers go to o.informational; 100 Continue is dropped,
// since the gateway never asks the upstream for one.
func (p *connPool) head(c *upstreamConn, o *outgoing) (*http.Response, error) {
	if err := o.writeHead(c.bw); err != nil {
		return nil, fmt.Errorf("send the request upstream: %w", noAnswer(err))
	}
	if o.length != 0 {
		c.bodyDone = make(chan struct{})
		// The writer gets a copy of its own, so that o itself stays
		// on the handler's stack for requests without a body.
		body := *o
		go c.writeBody(&body, p.headerTimeout)
	} else {
		if p.headerTimeout > 0 {
			_ = c.SetReadDeadline(time.Now().Add(p.headerTimeout))
		}
		if sent, err := c.send(); !sent {
			return nil, fmt.Errorf("send the request upstream: %w", noAnswer(err))
		} else if err != nil {
			return nil, fmt.Errorf("read the upstream's answer: %w", noAnswer(err))
		}
	}
	defer c.headDone()
	if _, err := c.br.Peek(1); err != nil {
		return nil, fmt.Errorf("read the upstream's answer: %w", noAnswer(err))
	}
	for n := 0; ; n++ {
		resp, err := http.ReadResponse(c.br, o.r)
		if err != nil {
			return nil, fmt.Errorf("read the upstream's answer: %w", err)
		}
		switch {
		case resp.StatusCode == http.StatusSwitchingProtocols && o.upgrade == "":
			return nil, errors.New("the upstream switched protocols on a request that asked for no upgrade")
		case resp.StatusCode == http.StatusSwitchingProtocols, resp.StatusCode >= 200:
			return resp, nil
		case n == maxInformational:
			return nil, errors.New("the upstream sent too many informational answers")
		case resp.StatusCode != http.StatusContinue:
			o.informational(resp.StatusCode, resp.Header)
		}
	}
}

// headDone ends the header timeout once the answer's head is read (or
// reading it failed).
func (c *upstreamConn) headDone() {
	c.mu.Lock()
	c.headRead = true
	_ = c.SetReadDeadline(time.Time{})
	c.mu.Unlock()
}

// writeBody writes o's body and flushes it, then starts the header
// timeout, which counts from the end of the request as the standard
// transport's does: a slow upload is not a slow upstream. A failure
// closes the connection, which ends the wait for the answer: the
// upstream has half a request, and the connection can carry nothing
// else.
func (c *upstreamConn) writeBody(o *outgoing, headerTimeout time.Duration) {
	err := o.writeBody(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		_ = c.Close()
	} else if headerTimeout > 0 {
		c.mu.Lock()
		if !c.headRead {
			_ = c.SetReadDeadline(time.Now().Add(headerTimeout))
		}
		c.mu.Unlock()
	}
	c.bodyErr = err
	close(c.bodyDone)
}

// bodyWritten reports whether the request body, if any, went upstream
// whole. An upstream may answer before it has read the body; the
// writer is then given a moment to finish, as the standard transport
// gives it, before the connection is given up.
func (c *upstreamConn) bodyWritten() bool {
	if c.bodyDone == nil {
		return true
	}
	select {
	case <-c.bodyDone:
	default:
		t := time.NewTimer(50 * time.Millisecond)
		defer t.Stop()
		select {
		case <-c.bodyDone:
		case <-t.C:
			return false
		}
	}
	return c.bodyErr == nil
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
// whole, nothing interrupted it, the request body went whole and neither
// side asked to close, and closes it otherwise.
func (b *upstreamBody) release(whole bool) {
	b.done = true
	interrupted := !b.stop()
	if whole && b.keep && !interrupted && b.c.bodyWritten() {
		b.pool.put(b.c)
		return
	}
	_ = b.c.Close()
}

// switchedConn is the upstream connection after a 101 answer: what is
// read comes first from what was buffered after the answer's head.
type switchedConn struct{ c *upstreamConn }

func (s switchedConn) Read(p []byte) (int, error)  { return s.c.br.Read(p) }
func (s switchedConn) Write(p []byte) (int, error) { return s.c.Write(p) }
func (s switchedConn) Close() error                { return s.c.Close() }
