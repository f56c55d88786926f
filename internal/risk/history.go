package risk

import (
	"net/netip"
	"slices"
	"time"
)

// MemoryHistory is a History held in memory: what tests, benchmarks and
// replays of a sign-in log use. It is not safe for concurrent use.
type MemoryHistory struct {
	// successes are per user, oldest first.
	successes map[string][]SignIn
	// failures are oldest first.
	failures []SignIn
	// failureTimes are per user, oldest first.
	failureTimes map[string][]time.Time
}

var _ History = (*MemoryHistory)(nil)

// NewMemoryHistory returns a history holding the given attempts.
func NewMemoryHistory(attempts ...SignIn) *MemoryHistory {
	h := &MemoryHistory{successes: map[string][]SignIn{}, failureTimes: map[string][]time.Time{}}
	for _, s := range attempts {
		h.Add(s)
	}
	return h
}

// Add records an attempt. Attempts usually arrive in time order; one
// that does not is inserted in its place.
func (h *MemoryHistory) Add(s SignIn) {
	byTime := func(a SignIn, t time.Time) int { return a.Time.Compare(t) }
	insert := func(list []SignIn) []SignIn {
		i, _ := slices.BinarySearchFunc(list, s.Time.Add(1), byTime)
		return slices.Insert(list, i, s)
	}
	if s.Success {
		h.successes[s.UserID] = insert(h.successes[s.UserID])
		return
	}
	h.failures = insert(h.failures)
	ts := h.failureTimes[s.UserID]
	i, _ := slices.BinarySearchFunc(ts, s.Time.Add(1), time.Time.Compare)
	h.failureTimes[s.UserID] = slices.Insert(ts, i, s.Time)
}

// Recent implements History.
func (h *MemoryHistory) Recent(userID string, n int) []SignIn {
	list := h.successes[userID]
	out := make([]SignIn, 0, min(n, len(list)))
	for i := len(list) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, list[i])
	}
	return out
}

// Failures implements History.
func (h *MemoryHistory) Failures(userID string, since time.Time) int {
	ts := h.failureTimes[userID]
	i, _ := slices.BinarySearchFunc(ts, since, time.Time.Compare)
	return len(ts) - i
}

// FailedAccounts implements History.
func (h *MemoryHistory) FailedAccounts(network netip.Prefix, since time.Time) int {
	i, _ := slices.BinarySearchFunc(h.failures, since, func(a SignIn, t time.Time) int { return a.Time.Compare(t) })
	users := map[string]struct{}{}
	for _, f := range h.failures[i:] {
		if f.IP.IsValid() && network.Contains(f.IP.Unmap().WithZone("")) {
			users[f.UserID] = struct{}{}
		}
	}
	return len(users)
}
