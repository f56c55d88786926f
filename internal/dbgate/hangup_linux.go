package dbgate

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// hungUp reports whether the client at the other end of conn has closed
// its connection or lost it, without taking anything from it: a peek of
// one byte that does not wait. End of stream or a socket error is a
// hang-up; pending bytes (the client's next messages) or nothing yet is
// a client still there. A statement waiting for a step-up asks it while
// nobody reads the connection, so that a client that went away does not
// keep its statement held until the wait ends.
func hungUp(conn net.Conn) bool {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	var buf [1]byte
	_ = raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == nil:
			gone = n == 0
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		default:
			gone = true
		}
		return true
	})
	return gone
}
