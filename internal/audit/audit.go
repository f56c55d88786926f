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
)

const (
	prefixEntry = "audit/entry/"
	headKey     = "audit/head"
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

func entryKey(seq int64) string { return prefixEntry + fmt.Sprintf("%020d", seq) }

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
		b, _ := json.Marshal(e)
		if _, err := l.kv.CreateKV(ctx, entryKey(e.Seq), b, time.Time{}); errors.Is(err, store.ErrConflict) {
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
	e, err := l.kv.GetKV(ctx, headKey)
	switch {
	case err == nil:
		if err := json.Unmarshal(e.Value, &h); err != nil {
			return h, fmt.Errorf("audit: the head record is corrupt: %w", err)
		}
	case !errors.Is(err, store.ErrNotFound):
		return h, err
	}
	for {
		next, err := l.kv.GetKV(ctx, entryKey(h.Seq+1))
		if errors.Is(err, store.ErrNotFound) {
			return h, nil
		}
		if err != nil {
			return h, err
		}
		var n Entry
		if err := json.Unmarshal(next.Value, &n); err != nil {
			return h, fmt.Errorf("audit: entry %d is corrupt: %w", h.Seq+1, err)
		}
		h = head{Seq: n.Seq, Hash: n.Hash}
	}
}

func (l *Log) moveHead(ctx context.Context, h head) error {
	b, _ := json.Marshal(h)
	_, err := l.kv.UpdateKV(ctx, headKey, func(old []byte) ([]byte, error) {
		var cur head
		if json.Unmarshal(old, &cur) == nil && cur.Seq >= h.Seq {
			return old, nil // never move back
		}
		return b, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		_, err = l.kv.CreateKV(ctx, headKey, b, time.Time{})
		if errors.Is(err, store.ErrConflict) {
			return l.moveHead(ctx, h)
		}
	}
	return err
}

// List returns the entries in order.
func (l *Log) List(ctx context.Context) ([]Entry, error) {
	kvs, err := l.kv.ListKV(ctx, prefixEntry)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(kvs))
	for _, e := range kvs {
		var en Entry
		if err := json.Unmarshal(e.Value, &en); err != nil {
			return nil, fmt.Errorf("audit: %s is not an entry: %w", e.Key, err)
		}
		out = append(out, en)
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
	kvs, err := l.kv.ListKV(ctx, prefixEntry)
	if err != nil {
		return 0, err
	}
	prev := genesis
	for i, kv := range kvs {
		var e Entry
		seq := int64(i + 1)
		if err := json.Unmarshal(kv.Value, &e); err != nil {
			return i, fmt.Errorf("%w at entry %d: not readable (%w)", ErrBroken, seq, err)
		}
		switch {
		case kv.Key != entryKey(seq) || e.Seq != seq:
			return i, fmt.Errorf("%w at entry %d: found entry %s there (an entry was removed)", ErrBroken, seq, strconv.FormatInt(e.Seq, 10))
		case e.Prev != prev:
			return i, fmt.Errorf("%w at entry %d: it does not follow entry %d (removed or reordered)", ErrBroken, seq, seq-1)
		case digest(e) != e.Hash:
			return i, fmt.Errorf("%w at entry %d (%s %s by %s at %s): its content was changed after it was written",
				ErrBroken, seq, e.Action, e.Target, e.Actor, e.Time.Format(time.RFC3339))
		}
		prev = e.Hash
	}
	h := head{Hash: genesis}
	if e, err := l.kv.GetKV(ctx, headKey); err == nil {
		_ = json.Unmarshal(e.Value, &h)
	}
	if h.Seq > int64(len(kvs)) {
		return len(kvs), fmt.Errorf("%w: the head names entry %d but the chain ends at %d (entries were removed from the end)", ErrBroken, h.Seq, len(kvs))
	}
	return len(kvs), nil
}
