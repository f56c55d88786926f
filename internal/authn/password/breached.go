package password

import (
	"bufio"
	"crypto/sha1" //nolint:gosec // SHA-1 is the format breach corpora are published in; it is a lookup key here, not a security primitive
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// maxListEntries bounds a breached-password list held in memory (about
// 28 bytes an entry): ten million entries, ~300 MB. The full corpus of
// known-breached passwords is far larger; use its most common part.
const maxListEntries = 10_000_000

// Breached is a set of passwords known to be breached or too common to
// use (NIST SP 800-63B 5.1.1.2: check new passwords against such a list).
type Breached struct {
	hashes map[[sha1.Size]byte]struct{}
}

// LoadBreached reads a list: one entry per line, either a password as it
// is, or its SHA-1 in hex (40 characters, any case, optionally followed
// by ":count" as breach corpora publish it). Blank lines and lines
// starting with "#!comment:" are skipped.
func LoadBreached(path string) (*Breached, error) {
	f, err := os.Open(path) //nolint:gosec // the operator names the file
	if err != nil {
		return nil, fmt.Errorf("breached password list: %w", err)
	}
	defer f.Close()
	b := &Breached{hashes: make(map[[sha1.Size]byte]struct{})}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" || strings.HasPrefix(line, "#!comment:") {
			continue
		}
		if len(b.hashes) >= maxListEntries {
			return nil, fmt.Errorf("breached password list %s has more than %d entries; use a shorter list of the most common ones", path, maxListEntries)
		}
		b.hashes[entryHash(line)] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("breached password list %s: %w", path, err)
	}
	return b, nil
}

// entryHash reads a line as a SHA-1 hex digest when it is one, else
// hashes it as a password.
func entryHash(line string) [sha1.Size]byte {
	hexPart, _, _ := strings.Cut(line, ":")
	if len(hexPart) == 2*sha1.Size {
		var h [sha1.Size]byte
		if _, err := hex.Decode(h[:], []byte(hexPart)); err == nil {
			return h
		}
	}
	return sha1.Sum([]byte(line)) //nolint:gosec // see the import
}

// Len is the number of entries.
func (b *Breached) Len() int { return len(b.hashes) }

// Contains reports whether pw is on the list.
func (b *Breached) Contains(pw string) bool {
	if b == nil {
		return false
	}
	_, ok := b.hashes[sha1.Sum([]byte(pw))] //nolint:gosec // see the import
	return ok
}
