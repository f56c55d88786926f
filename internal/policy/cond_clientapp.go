package policy

import (
	"fmt"
	"slices"
)

// clientAppCond matches client app types by bitmask; zero means unset.
type clientAppCond struct{ mask uint8 }

func (cc clientAppCond) match(app string) Reason {
	if cc.mask == 0 {
		return ""
	}
	i := slices.Index(clientApps, app)
	if i < 0 || cc.mask&(1<<i) == 0 {
		return ReasonClientAppNotIncluded
	}
	return ""
}

func (c *compiler) clientAppCond(d *Document, path string, in []string) clientAppCond {
	var cc clientAppCond
	for i, a := range in {
		j := slices.Index(clientApps, a)
		if j < 0 {
			c.addf(d, fmt.Sprintf("%s[%d]", path, i), "unknown client app type %q%s", a, didYouMean(a, clientApps))
			continue
		}
		cc.mask |= 1 << j
	}
	return cc
}
