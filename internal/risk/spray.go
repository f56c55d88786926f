package risk

import (
	"net/netip"
	"strconv"
)

// spray detects password spray: one source trying a few common passwords
// against many accounts, staying under every per-account lockout. No
// single account looks attacked, so the count that matters is distinct
// accounts with failures from the attempt's address, or from its /24
// (/48 for IPv6) since sprayers rotate through neighbouring addresses.
// Reaching SprayThreshold within SprayWindow is high: it is an attack in
// progress, and the attempt that finally guesses a password comes from
// the same source.
//
// The count is of attempts before this one, so the attempt that follows
// the threshold-th failing account is the first one flagged.
func (e *Engine) spray(in SignIn, h History) (Detection, bool) {
	if !in.IP.IsValid() {
		return Detection{}, false
	}
	since := in.Time.Add(-e.cfg.SprayWindow)
	ip := in.IP.Unmap().WithZone("")
	for _, src := range []netip.Prefix{netip.PrefixFrom(ip, ip.BitLen()), network(ip)} {
		if !src.IsValid() {
			continue
		}
		if n := h.FailedAccounts(src, since); n >= e.cfg.SprayThreshold {
			return Detection{
				Type:   TypeSpray,
				Level:  High,
				Reason: ReasonPasswordSpray,
				Evidence: map[string]string{
					"source":          src.String(),
					"failed_accounts": strconv.Itoa(n),
					"threshold":       strconv.Itoa(e.cfg.SprayThreshold),
					"window":          e.cfg.SprayWindow.String(),
				},
			}, true
		}
	}
	return Detection{}, false
}

// bruteForce detects many failed attempts on one account, from anywhere:
// a guessing attack spread over a botnet defeats per-address counts.
// It is medium, not high, because a user who forgot their password makes
// the same pattern; the attempt that follows still has to prove more.
func (e *Engine) bruteForce(in SignIn, h History) (Detection, bool) {
	if in.UserID == "" {
		return Detection{}, false
	}
	n := h.Failures(in.UserID, in.Time.Add(-e.cfg.BruteForceWindow))
	if n < e.cfg.BruteForceThreshold {
		return Detection{}, false
	}
	return Detection{
		Type:   TypeBruteForce,
		Level:  Medium,
		Reason: ReasonBruteForce,
		Evidence: map[string]string{
			"failures":  strconv.Itoa(n),
			"threshold": strconv.Itoa(e.cfg.BruteForceThreshold),
			"window":    e.cfg.BruteForceWindow.String(),
		},
	}, true
}
