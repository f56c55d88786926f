package dbgate

import (
	"bytes"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// fuzzMaxBody is the message bound the fuzz target reads with; the
// reader must never allocate past it, whatever length a header claims.
const fuzzMaxBody = 64 << 10

// FuzzClientFraming feeds arbitrary bytes to the reader the gateway
// reads clients with, first as startup packets, then as messages: it
// must not panic, and must stop at a header claiming more than the bound.
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
		r := &countingReader{r: bytes.NewReader(data)}
		be := pgproto3.NewBackend(r, io.Discard)
		be.SetMaxBodyLen(fuzzMaxBody)
		if _, err := be.ReceiveStartupMessage(); err != nil {
			return
		}
		for range 1000 {
			msg, err := be.Receive()
			if err != nil {
				return
			}
			if _, ok := msg.(*pgproto3.PasswordMessage); ok {
				continue
			}
		}
	})
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
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
