package audit

import (
	"testing"
	"time"
)

// TestAnonymousLimit floods the limit from one address, from neighbours in
// one IPv6 /64, and from many addresses, and checks each bound and that a
// new window starts afresh.
func TestAnonymousLimit(t *testing.T) {
	now := time.Date(2031, 3, 4, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	count := func(l *AnonymousLimit, ips ...string) (allowed, firsts int) {
		for _, ip := range ips {
			ok, first := l.Allow(ip)
			if ok {
				allowed++
			}
			if first {
				firsts++
			}
		}
		return allowed, firsts
	}
	repeat := func(ip string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = ip
		}
		return out
	}

	l := NewAnonymousLimit(10, 25, time.Minute, clock)
	if got, firsts := count(l, repeat("203.0.113.7", 100)...); got != 10 || firsts != 1 {
		t.Fatalf("fail/one-address: %d written, %d warnings; want 10 and 1", got, firsts)
	}
	var sixes []string
	for i := range 100 {
		sixes = append(sixes, "2001:db8::"+string(rune('a'+i%6))+":1")
	}
	if got, _ := count(l, sixes...); got != 10 {
		t.Fatalf("fail/one-ipv6-64: %d written, want 10", got)
	}
	if got, _ := count(l, "198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5", "198.51.100.6", "198.51.100.7"); got != 5 {
		t.Fatalf("fail/total: %d written, want the 5 left of 25", got)
	}
	now = now.Add(time.Minute)
	if got, firsts := count(l, repeat("203.0.113.7", 20)...); got != 10 || firsts != 1 {
		t.Fatalf("ok/next-window: %d written, %d warnings; want 10 and 1", got, firsts)
	}
	if len(l.byAddress) > 25 {
		t.Fatalf("the table holds %d addresses, more than the total", len(l.byAddress))
	}
}
