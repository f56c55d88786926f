// Package audit is the administrative audit trail: every change an
// administrator (or a user to their own account) makes — a user
// disabled, a password reset, MFA reset, risk dismissed, sessions
// revoked, a client added or removed — with who, what, before and after,
// and why.
//
// Entries are hash-chained: each carries the SHA-256 of the previous
// entry's hash and its own content, so editing, deleting or reordering
// any stored entry breaks the chain from there on, and Verify names the
// first broken entry. (Truncating the newest entries is detected too when
// the head record survives; keep a copy of the head elsewhere to detect
// an attacker who rewrites both.)
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// The trail's entries and its head, in the key/value space. moveHead
// reads a corrupt head as none, so the next entry repairs it.
var (
	entries     = kvspace.JSON[Entry](kvspace.AuditEntry)
	heads       = kvspace.JSON[head](kvspace.AuditHead)
	headsRepair = kvspace.LenientJSON[head](kvspace.AuditHead)
)

const (
	// genesis is the previous hash of the first entry.
	genesis = "0000000000000000000000000000000000000000000000000000000000000000"
)

// Entry is one audited change.
type Entry struct {
	Seq    int64           `json:"seq"`
	Time   time.Time       `json:"time"`
	Actor  string          `json:"actor"`  // "user:alice", "cli:root", "admin-api:ops"
	Action string          `json:"action"` // "user.disable", "user.mfa-reset", ...
	Target string          `json:"target"` // what was changed
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
	Reason string          `json:"reason,omitempty"`
	Prev   string          `json:"prev"`
	Hash   string          `json:"hash"`
}

// head is the chain's newest position.
type head struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// Log appends to and verifies the trail.
type Log struct {
	kv  store.KV
	now func() time.Time
}

// New returns a Log over kv.
func New(kv store.KV, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{kv: kv, now: now}
}

// digest is the entry's hash: over the previous hash and every field but
// the hash itself, in a fixed encoding.
func digest(e Entry) string {
	e.Hash = ""
	b, _ := json.Marshal(e)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// entryID is the id of entry seq: zero-padded, so keys sort in order.
func entryID(seq int64) string { return fmt.Sprintf("%020d", seq) }

// Record appends a change. before and after are any JSON-encodable
// values (nil for none).
func (l *Log) Record(ctx context.Context, actor, action, target, reason string, before, after any) (Entry, error) {
	e := Entry{Time: l.now().UTC(), Actor: actor, Action: action, Target: target, Reason: reason}
	var err error
	if e.Before, err = rawJSON(before); err != nil {
		return Entry{}, err
	}
	if e.After, err = rawJSON(after); err != nil {
		return Entry{}, err
	}
	// The head moves by compare-and-swap, so two writers (two nodes)
	// never take the same place in the chain.
	for range 20 {
		h, err := l.head(ctx)
		if err != nil {
			return Entry{}, err
		}
		e.Seq, e.Prev = h.Seq+1, h.Hash
		e.Hash = digest(e)
		if err := entries.At(entryID(e.Seq)).Create(ctx, l.kv, e, time.Time{}); errors.Is(err, store.ErrConflict) {
			continue // another writer took this place; read the head again
		} else if err != nil {
			return Entry{}, fmt.Errorf("audit: %w", err)
		}
		if err := l.moveHead(ctx, head{Seq: e.Seq, Hash: e.Hash}); err != nil {
			return Entry{}, err
		}
		return e, nil
	}
	return Entry{}, errors.New("audit: too many concurrent writers; try again")
}

func rawJSON(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return b, nil
}

// head returns the newest position: the head record, advanced past any
// entry written after it (a writer that stopped between writing its
// entry and moving the head).
func (l *Log) head(ctx context.Context) (head, error) {
	h := head{Hash: genesis}
	stored, err := heads.At().Get(ctx, l.kv)
	switch {
	case err == nil:
		h = stored
	case errors.Is(err, kvspace.ErrCorrupt):
		return h, fmt.Errorf("audit: the head record is corrupt: %w", err)
	case !errors.Is(err, store.ErrNotFound):
		return h, err
	}
	for {
		n, err := entries.At(entryID(h.Seq+1)).Get(ctx, l.kv)
		if errors.Is(err, store.ErrNotFound) {
			return h, nil
		}
		if errors.Is(err, kvspace.ErrCorrupt) {
			return h, fmt.Errorf("audit: entry %d is corrupt: %w", h.Seq+1, err)
		}
		if err != nil {
			return h, err
		}
		h = head{Seq: n.Seq, Hash: n.Hash}
	}
}

func (l *Log) moveHead(ctx context.Context, h head) error {
	rec := headsRepair.At()
	err := rec.Update(ctx, l.kv, func(cur head) (head, error) {
		if cur.Seq >= h.Seq {
			return cur, nil // never move back
		}
		return h, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		err = rec.Create(ctx, l.kv, h, time.Time{})
		if errors.Is(err, store.ErrConflict) {
			return l.moveHead(ctx, h)
		}
	}
	return err
}

// List returns the entries in order.
func (l *Log) List(ctx context.Context) ([]Entry, error) {
	items, err := entries.List(ctx, l.kv)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(items))
	for _, it := range items {
		if it.Err != nil {
			return nil, fmt.Errorf("audit: entry %s is not an entry: %w", it.ID, it.Err)
		}
		out = append(out, it.Value)
	}
	return out, nil
}

// ErrBroken means the chain does not verify.
var ErrBroken = errors.New("the audit chain is broken")

// Verify walks the whole chain and returns how many entries it checked,
// or ErrBroken naming the first entry that does not verify: an entry
// whose content no longer matches its hash (edited), whose previous hash
// is not the hash before it (deleted or reordered), whose number is not
// the next (deleted), or a head that points past the last entry
// (truncated).
func (l *Log) Verify(ctx context.Context) (int, error) {
	items, err := entries.List(ctx, l.kv)
	if err != nil {
		return 0, err
	}
	prev := genesis
	for i, it := range items {
		e := it.Value
		seq := int64(i + 1)
		if it.Err != nil {
			return i, fmt.Errorf("%w at entry %d: not readable (%w)", ErrBroken, seq, it.Err)
		}
		switch {
		case it.ID != entryID(seq) || e.Seq != seq:
			return i, fmt.Errorf("%w at entry %d: found entry %s there (an entry was removed)", ErrBroken, seq, strconv.FormatInt(e.Seq, 10))
		case e.Prev != prev:
			return i, fmt.Errorf("%w at entry %d: it does not follow entry %d (removed or reordered)", ErrBroken, seq, seq-1)
		case digest(e) != e.Hash:
			return i, fmt.Errorf("%w at entry %d (%s %s by %s at %s): its content was changed after it was written",
				ErrBroken, seq, e.Action, e.Target, e.Actor, e.Time.Format(time.RFC3339))
		}
		prev = e.Hash
	}
	h, _ := headsRepair.At().Get(ctx, l.kv)
	if h.Seq > int64(len(items)) {
		return len(items), fmt.Errorf("%w: the head names entry %d but the chain ends at %d (entries were removed from the end)", ErrBroken, h.Seq, len(items))
	}
	return len(items), nil
}
