package policy

import (
	"fmt"
	"slices"
)

// platformCond matches device platforms by bitmask; index i of platforms
// is bit i.
type platformCond struct {
	set        bool
	incl, excl uint8
}

const allPlatforms = uint8(1)<<7 - 1 // every entry of platforms, unknown included

func platformBit(p string) uint8 {
	if p == "" {
		p = PlatformUnknown
	}
	if i := slices.Index(platforms, p); i >= 0 {
		return 1 << i
	}
	return 1 << slices.Index(platforms, PlatformUnknown)
}

func (pc platformCond) match(platform string) Reason {
	if !pc.set {
		return ""
	}
	b := platformBit(platform)
	if pc.incl&b == 0 {
		return ReasonPlatformNotIncluded
	}
	if pc.excl&b != 0 {
		return ReasonPlatformExcluded
	}
	return ""
}

func (c *compiler) platformCond(d *Document, path string, in IncludeExclude) platformCond {
	pc := platformCond{set: len(in.Include)+len(in.Exclude) > 0}
	if len(in.Include) == 0 {
		pc.incl = allPlatforms // exclude-only: every other platform
	}
	for i, p := range in.Include {
		if p == "all" {
			pc.incl = allPlatforms
			continue
		}
		pc.incl |= c.platformEntry(d, fmt.Sprintf("%s.include[%d]", path, i), p)
	}
	for i, p := range in.Exclude {
		if p == "all" {
			c.addf(d, fmt.Sprintf("%s.exclude[%d]", path, i), "excluding all platforms leaves the policy for no device; set state: disabled instead")
			continue
		}
		pc.excl |= c.platformEntry(d, fmt.Sprintf("%s.exclude[%d]", path, i), p)
	}
	return pc
}

func (c *compiler) platformEntry(d *Document, path, p string) uint8 {
	i := slices.Index(platforms, p)
	if i < 0 {
		c.addf(d, path, "unknown platform %q%s", p, didYouMean(p, append([]string{"all"}, platforms...)))
		return 0
	}
	return 1 << i
}
