package dbgate

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// cancelKey is the key a client is given to cancel its own running
// statement: the gateway makes it, so a client never learns the
// upstream's process id or secret, and a cancel request naming any other
// key reaches nobody.
//
// The secret is 4 bytes, as protocol 3.0 clients (psql before 18, most
// drivers) require; with the random 31-bit process id a guess must hit
// 63 random bits.
type cancelKey struct {
	pid    uint32
	secret [4]byte
}

// upstreamKey is what a cancel request is forwarded with.
type upstreamKey struct {
	pid    uint32
	secret []byte
}

// cancelKeys maps the keys given to clients to their sessions' upstream
// keys.
type cancelKeys struct {
	mu   sync.Mutex // guards keys
	keys map[uint32]cancelEntry
}

type cancelEntry struct {
	secret   [4]byte
	upstream upstreamKey
	// wake abandons the session's wait for a step-up, if it waits.
	wake chan<- struct{}
}

func newCancelKeys() *cancelKeys { return &cancelKeys{keys: map[uint32]cancelEntry{}} }

// issue makes a fresh key for a session whose upstream key is up.
func (k *cancelKeys) issue(up upstreamKey, wake chan<- struct{}) cancelKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	for {
		var b [8]byte
		_, _ = rand.Read(b[:])
		key := cancelKey{pid: binary.BigEndian.Uint32(b[:4]) & 0x7fffffff}
		copy(key.secret[:], b[4:])
		if _, taken := k.keys[key.pid]; taken || key.pid == 0 {
			continue
		}
		k.keys[key.pid] = cancelEntry{secret: key.secret, upstream: up, wake: wake}
		return key
	}
}

// forget removes a session's key when it ends.
func (k *cancelKeys) forget(key cancelKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.keys, key.pid)
}

// lookup returns the upstream key of the session the client's key
// names; the secret is compared in constant time, so timing does not
// reveal how much of a guessed secret is right.
func (k *cancelKeys) lookup(pid uint32, secret []byte) (cancelEntry, bool) {
	k.mu.Lock()
	e, ok := k.keys[pid]
	k.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare(e.secret[:], secret) != 1 {
		return cancelEntry{}, false
	}
	return e, true
}

// cancel forwards a client's CancelRequest to the upstream when its key
// is one the gateway gave out, and abandons the session's wait for a
// step-up if it waits. A request with any other key, such as a guess or
// a key of another gateway, is dropped without an answer, as PostgreSQL
// itself answers none.
func (s *Server) cancel(ctx context.Context, req *pgproto3.CancelRequest) {
	e, ok := s.cancels.lookup(req.ProcessID, req.SecretKey)
	if !ok {
		s.Log.Info("database cancel request with an unknown key dropped", "database", s.db.Name)
		return
	}
	select {
	case e.wake <- struct{}{}:
	default: // a cancel is already waiting to be seen
	}
	up := e.upstream
	ctx, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", s.db.Upstream.Address)
	if err != nil {
		s.Log.Warn("forward database cancel request", "database", s.db.Name, "err", err)
		return
	}
	defer c.Close()
	msg, err := (&pgproto3.CancelRequest{ProcessID: up.pid, SecretKey: up.secret}).Encode(nil)
	if err != nil {
		return
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = c.Write(msg)
	// The server closes the connection when it has handled the request.
	_, _ = c.Read(make([]byte, 1))
}
