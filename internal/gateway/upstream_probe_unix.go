//go:build unix

package gateway

import "syscall"

// nothingToRead reports whether the socket fd, which the runtime's
// poller keeps non-blocking, has nothing to read and is not closed: a
// read that would block. Anything it does read belongs to a connection
// that is closed at once.
func nothingToRead(fd uintptr) bool {
	var b [1]byte
	_, err := syscall.Read(int(fd), b[:])
	return err == syscall.EAGAIN
}
