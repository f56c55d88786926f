package sqlite

import (
	"errors"
	"sync"
	"syscall"
	"unsafe"

	"github.com/stepgate/stepgate/internal/store/sqlstore"
)

var _ sqlstore.WriteSignal = (*dirWrites)(nil)

// dirWrites counts the changes the kernel reports (inotify) to the files
// of the database's directory: every commit, by this process or another
// (the command line), writes the write-ahead log. The kernel queues the
// event before the writer's write returns, and Writes reads the queue
// itself, so a write that completed before a call is always counted by
// it; any event counts, whichever file it names, which can only cost a
// read of the counter too many.
type dirWrites struct {
	// mu guards fd, n and broken: reading the queue and counting what
	// was read are one step, or a caller could find the queue emptied
	// by another before that one counted it.
	mu     sync.Mutex
	fd     int
	n      uint64
	broken bool
}

// watchWrites watches dir; nil when the kernel cannot (then every
// access mark reads the counter).
func watchWrites(dir string) *dirWrites {
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		return nil
	}
	const mask = syscall.IN_MODIFY | syscall.IN_CREATE | syscall.IN_DELETE | syscall.IN_MOVED_FROM | syscall.IN_MOVED_TO |
		syscall.IN_CLOSE_WRITE | syscall.IN_DELETE_SELF | syscall.IN_MOVE_SELF
	if _, err := syscall.InotifyAddWatch(fd, dir, mask); err != nil {
		_ = syscall.Close(fd)
		return nil
	}
	return &dirWrites{fd: fd}
}

// Writes drains the event queue and returns the events counted so far.
// An overflowed queue, a watch the kernel dropped (the directory moved
// or deleted) or a failed read break the watch for good.
func (w *dirWrites) Writes() (uint64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var buf [4096]byte
	for !w.broken {
		n, err := syscall.Read(w.fd, buf[:])
		if errors.Is(err, syscall.EAGAIN) {
			break
		}
		if err != nil || n <= 0 {
			w.broken = true
			break
		}
		w.n++
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off])) //nolint:gosec // the kernel writes events in this layout
			if ev.Mask&(syscall.IN_Q_OVERFLOW|syscall.IN_IGNORED|syscall.IN_DELETE_SELF|syscall.IN_MOVE_SELF|syscall.IN_UNMOUNT) != 0 {
				w.broken = true
			}
			off += syscall.SizeofInotifyEvent + int(ev.Len)
		}
	}
	return w.n, !w.broken
}

// Close stops watching.
func (w *dirWrites) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.broken = true
	return syscall.Close(w.fd)
}
