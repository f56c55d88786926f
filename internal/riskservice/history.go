package riskservice

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"time"

	"github.com/stepgate/stepgate/internal/risk"
	"github.com/stepgate/stepgate/internal/store"
)

// Caps of the stored history: enough for every detector's window.
const (
	maxRecentSignIns   = 50
	maxFailuresKept    = 200
	riskHistoryKeep    = 90 * 24 * time.Hour
	failureHistoryKeep = 2 * time.Hour
)

// Key/value keys of the history.
func recentKey(userID string) string { return "risk/recent/" + userID }
func failKey(userID string) string   { return "risk/fail/user/" + userID }
func netKey(n netip.Prefix) string   { return "risk/fail/net/" + n.String() }
func userRiskKey(id string) string   { return "risk/user/" + id }

// network is the /24 or /48 an address belongs to.
func network(ip netip.Addr) netip.Prefix {
	bits := 48
	if ip.Is4() || ip.Is4In6() {
		ip, bits = ip.Unmap(), 24
	}
	p, _ := ip.Prefix(bits)
	return p
}

// history loads what the detectors compare an attempt with.
func (k *Service) history(ctx context.Context, in risk.SignIn) (*risk.MemoryHistory, error) {
	var all []risk.SignIn
	for _, key := range []string{recentKey(in.UserID), failKey(in.UserID), netKey(network(in.IP))} {
		var part []risk.SignIn
		if err := k.load(ctx, key, &part); err != nil {
			return nil, err
		}
		all = append(all, part...)
	}
	return risk.NewMemoryHistory(all...), nil
}

func (k *Service) load(ctx context.Context, key string, v any) error {
	e, err := k.kv.GetKV(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(e.Value, v)
}

// appendTo adds in to the list at key, keeping the newest max.
func (k *Service) appendTo(ctx context.Context, key string, in risk.SignIn, maxLen int, keep time.Duration) error {
	add := func(b []byte) ([]byte, error) {
		var list []risk.SignIn
		if len(b) > 0 {
			if err := json.Unmarshal(b, &list); err != nil {
				list = nil // a corrupt history is started over, not fatal
			}
		}
		list = append([]risk.SignIn{in}, list...)
		if len(list) > maxLen {
			list = list[:maxLen]
		}
		return json.Marshal(list)
	}
	_, err := k.kv.UpdateKV(ctx, key, add)
	if errors.Is(err, store.ErrNotFound) {
		b, _ := add(nil)
		if _, err = k.kv.CreateKV(ctx, key, b, k.now().Add(keep)); errors.Is(err, store.ErrConflict) {
			return k.appendTo(ctx, key, in, maxLen, keep)
		}
	}
	return err
}
