package sqlite

import "unsafe"

// unsafePointer reads an inotify event header in place, as the kernel
// wrote it into the buffer.
func unsafePointer(b *byte) unsafe.Pointer { return unsafe.Pointer(b) } //nolint:gosec // the kernel's event layout
