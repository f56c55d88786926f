package kvspace

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// codec turns a namespace's values into stored bytes and back.
type codec[T any] struct {
	encode func(T) ([]byte, error)
	decode func([]byte) (T, error)
}

// Mark is the value of a namespace whose entries only say that something
// happened (a spent token, a replayed assertion); what matters is the key
// and its expiry.
type Mark struct{}

func jsonCodec[T any]() codec[T] {
	return codec[T]{
		encode: func(v T) ([]byte, error) { return json.Marshal(v) },
		decode: func(b []byte) (T, error) {
			var v T
			err := json.Unmarshal(b, &v)
			return v, err
		},
	}
}

// lenientJSONCodec decodes a corrupt value as the zero value: for
// histories that start over rather than fail.
func lenientJSONCodec[T any]() codec[T] {
	c := jsonCodec[T]()
	c.decode = func(b []byte) (T, error) {
		var v T
		if json.Unmarshal(b, &v) != nil {
			v = *new(T)
		}
		return v, nil
	}
	return c
}

func bytesCodec() codec[[]byte] {
	return codec[[]byte]{
		encode: func(v []byte) ([]byte, error) { return v, nil },
		decode: func(b []byte) ([]byte, error) { return b, nil },
	}
}

// markCodec stores mark as the value of every entry.
func markCodec(mark []byte) codec[Mark] {
	return codec[Mark]{
		encode: func(Mark) ([]byte, error) { return append([]byte(nil), mark...), nil },
		decode: func(b []byte) (Mark, error) {
			if !bytes.Equal(b, mark) {
				return Mark{}, fmt.Errorf("want the mark %q, found %q", mark, b)
			}
			return Mark{}, nil
		},
	}
}

// counterCodec stores a count in decimal.
func counterCodec() codec[int64] {
	return codec[int64]{
		encode: func(n int64) ([]byte, error) { return strconv.AppendInt(nil, n, 10), nil },
		decode: func(b []byte) (int64, error) { return strconv.ParseInt(string(b), 10, 64) },
	}
}

// microsCodec stores a time as decimal Unix microseconds, UTC.
func microsCodec() codec[time.Time] {
	return codec[time.Time]{
		encode: func(t time.Time) ([]byte, error) { return strconv.AppendInt(nil, t.UnixMicro(), 10), nil },
		decode: func(b []byte) (time.Time, error) {
			us, err := strconv.ParseInt(string(b), 10, 64)
			return time.UnixMicro(us).UTC(), err
		},
	}
}
