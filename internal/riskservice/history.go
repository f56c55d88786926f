package riskservice

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"time"

	"github.com/stepgate/stepgate/internal/risk"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// Caps of the stored history: enough for every detector's window.
const (
	maxRecentSignIns   = 50
	maxFailuresKept    = 200
	riskHistoryKeep    = 90 * 24 * time.Hour
	failureHistoryKeep = 2 * time.Hour
)

// The history's lists in the key/value space. Appending reads a corrupt
// list as empty: a history is started over, not fatal.
var (
	recentSignIns  = kvspace.JSON[[]risk.SignIn](kvspace.RiskRecent)
	userFailures   = kvspace.JSON[[]risk.SignIn](kvspace.RiskFailedUser)
	netFailures    = kvspace.JSON[[]risk.SignIn](kvspace.RiskFailedNetwork)
	userRisks      = kvspace.JSON[risk.UserRiskState](kvspace.UserRisk)
	recentAppend   = kvspace.LenientJSON[[]risk.SignIn](kvspace.RiskRecent)
	userFailAppend = kvspace.LenientJSON[[]risk.SignIn](kvspace.RiskFailedUser)
	netFailAppend  = kvspace.LenientJSON[[]risk.SignIn](kvspace.RiskFailedNetwork)
)

// netID is the id of network n: its address and its length.
func netID(n netip.Prefix) []string { return []string{n.Addr().String(), strconv.Itoa(n.Bits())} }

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
	for _, ref := range []kvspace.Ref[[]risk.SignIn]{
		recentSignIns.At(in.UserID), userFailures.At(in.UserID), netFailures.At(netID(network(in.IP))...),
	} {
		part, err := load(ctx, k.kv, ref)
		if err != nil {
			return nil, err
		}
		all = append(all, part...)
	}
	return risk.NewMemoryHistory(all...), nil
}

// load reads the value at ref; T's zero value when there is none.
func load[T any](ctx context.Context, kv kvspace.Getter, ref kvspace.Ref[T]) (T, error) {
	v, err := ref.Get(ctx, kv)
	if errors.Is(err, store.ErrNotFound) {
		return v, nil
	}
	return v, err
}

// appendTo adds in to the list at key, keeping the newest max.
func (k *Service) appendTo(ctx context.Context, ref kvspace.Ref[[]risk.SignIn], in risk.SignIn, maxLen int, keep time.Duration) error {
	add := func(list []risk.SignIn) ([]risk.SignIn, error) {
		list = append([]risk.SignIn{in}, list...)
		if len(list) > maxLen {
			list = list[:maxLen]
		}
		return list, nil
	}
	err := ref.Update(ctx, k.kv, add)
	if errors.Is(err, store.ErrNotFound) {
		first, _ := add(nil)
		if err = ref.Create(ctx, k.kv, first, k.now().Add(keep)); errors.Is(err, store.ErrConflict) {
			return k.appendTo(ctx, ref, in, maxLen, keep)
		}
	}
	return err
}
