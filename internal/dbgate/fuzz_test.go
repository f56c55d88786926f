package dbgate

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/stepgate/stepgate/internal/oauth"
)

// fuzzMaxBody is the message bound the fuzz target reads with; the
// reader must never allocate past it, whatever length a header claims.
const fuzzMaxBody = 64 << 10

// FuzzClientFraming feeds arbitrary bytes to the reader the gateway
// reads clients with, first as startup packets, then as messages: it
// must not panic. TestOversizedMessageRefused proves the bound on what a
// header may claim.
func FuzzClientFraming(f *testing.F) {
	startup, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "alice"}}).Encode(nil)
	query, _ := (&pgproto3.Query{String: "SELECT 1"}).Encode(nil)
	parse, _ := (&pgproto3.Parse{Name: "s", Query: "SELECT $1", ParameterOIDs: []uint32{23}}).Encode(nil)
	bind, _ := (&pgproto3.Bind{PreparedStatement: "s", Parameters: [][]byte{[]byte("1")}}).Encode(nil)
	f.Add(append(append(append([]byte{}, startup...), query...), parse...))
	f.Add(append(append([]byte{}, startup...), bind...))
	f.Add([]byte{0, 0, 0, 8, 4, 210, 22, 47})                                // SSLRequest
	f.Add(append(append([]byte{}, startup...), 'Q', 0x7f, 0xff, 0xff, 0xff)) // a 2 GiB claim
	f.Fuzz(func(t *testing.T, data []byte) {
		be := pgproto3.NewBackend(bytes.NewReader(data), io.Discard)
		be.SetMaxBodyLen(fuzzMaxBody)
		if _, err := be.ReceiveStartupMessage(); err != nil {
			return
		}
		for range 1000 {
			if _, err := be.Receive(); err != nil {
				return
			}
		}
	})
}

// TestOversizedMessageRefused: a header claiming a body past the bound is
// an error before any of the body is read or allocated.
func TestOversizedMessageRefused(t *testing.T) {
	startup, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "alice"}}).Encode(nil)
	data := append(append([]byte{}, startup...), 'Q', 0x7f, 0xff, 0xff, 0xff)
	be := pgproto3.NewBackend(bytes.NewReader(data), io.Discard)
	be.SetMaxBodyLen(fuzzMaxBody)
	if _, err := be.ReceiveStartupMessage(); err != nil {
		t.Fatal(err)
	}
	if _, err := be.Receive(); err == nil {
		t.Fatal("a 2 GiB message was accepted")
	}
}

// refuseAll verifies no token.
type refuseAll struct{}

func (refuseAll) VerifyAccessToken(context.Context, string) (*oauth.AccessClaims, error) {
	return nil, errors.New("no")
}

// FuzzStartup runs the gateway's own startup and sign-in on arbitrary
// bytes from a client: it must not panic or hang, and with every token
// refused it never signs anyone in.
func FuzzStartup(f *testing.F) {
	startup, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "alice", "database": "bank"}}).Encode(nil)
	password, _ := (&pgproto3.PasswordMessage{Password: "tok"}).Encode(nil)
	f.Add(append(append([]byte{}, startup...), password...))
	f.Add([]byte{0, 0, 0, 8, 4, 210, 22, 47, 0, 0, 0, 8, 4, 210, 22, 48})    // SSLRequest, GSSENCRequest
	f.Add([]byte{0, 0, 0, 16, 4, 210, 22, 46, 0, 0, 0, 1, 0, 0, 0, 2})       // CancelRequest
	f.Add(append(append([]byte{}, startup...), 'p', 0x7f, 0xff, 0xff, 0xff)) // a 2 GiB password
	s, err := New(Database{Name: "bank", Upstream: Upstream{Address: "127.0.0.1:1"}, InsecureLoopback: true, MaxMessageSize: fuzzMaxBody},
		Deps{Tokens: refuseAll{}, Users: nil})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		server, client := net.Pipe()
		defer client.Close()
		go func() {
			_, _ = client.Write(data)
			_ = client.Close()
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		_ = server.SetDeadline(time.Now().Add(time.Second))
		c, ok := s.startup(context.Background(), server)
		server.Close()
		if ok || c != nil && c.signedIn != nil {
			t.Fatal("signed in with every token refused")
		}
	})
}
