package policy

import "fmt"

// riskCond matches a set of risk levels; a zero mask means the condition
// is not set.
type riskCond struct {
	mask uint8 // bit i set: level i (none=0 .. high=3) matches
}

// match returns whether level matches and, if not, whether it is below
// every listed level (the usual case: the risk is not high enough yet).
func (rc riskCond) match(level string) (ok, below bool) {
	if rc.mask == 0 {
		return true, false
	}
	l := riskLevel(level)
	if l < 0 {
		return false, false // an unknown level never matches
	}
	if rc.mask&(1<<l) != 0 {
		return true, false
	}
	// below: every listed level is higher than the request's.
	return false, rc.mask&(1<<(l+1)-1) == 0
}

func (c *compiler) risk(d *Document, path string, levels []string) riskCond {
	var rc riskCond
	for i, lv := range levels {
		l := riskLevel(lv)
		if lv == "" || l < 0 {
			c.addf(d, fmt.Sprintf("%s[%d]", path, i), "unknown risk level %q%s", lv, didYouMean(lv, riskLevels))
			continue
		}
		rc.mask |= 1 << l
	}
	return rc
}

func (p *compiledPolicy) matchRisk(r *Request) Reason {
	if ok, below := p.userRisk.match(r.UserRisk); !ok {
		if below {
			return ReasonUserRiskBelowThreshold
		}
		return ReasonUserRiskNotIncluded
	}
	if ok, below := p.signInRisk.match(r.SignInRisk); !ok {
		if below {
			return ReasonSignInRiskBelowThreshold
		}
		return ReasonSignInRiskNotIncluded
	}
	return ""
}
