package policy

import "fmt"

// locationCond matches the request's named locations. A request is "in"
// a location when its IP is in one of the location's ranges or its
// country is one of the location's countries (or unknown, when the
// location includes unknown countries).
type locationCond struct {
	set                      bool
	inclAll                  bool
	inclTrusted, exclTrusted bool
	incl, excl               bitset
}

// where is the request's location membership, looked up once per
// evaluation.
type where struct {
	byIP, byCountry, trusted bitset
}

func (w *where) in(b bitset) bool { return b.intersects(w.byIP) || b.intersects(w.byCountry) }

// isTrusted: only IP ranges can be trusted, so only byIP counts.
func (w *where) isTrusted() bool { return w.trusted.intersects(w.byIP) }

func (lc *locationCond) match(w *where) Reason {
	if !lc.set {
		return ""
	}
	if !lc.inclAll && (!lc.inclTrusted || !w.isTrusted()) && !w.in(lc.incl) {
		return ReasonLocationNotIncluded
	}
	if (lc.exclTrusted && w.isTrusted()) || w.in(lc.excl) {
		return ReasonLocationExcluded
	}
	return ""
}

func (c *compiler) locationCond(d *Document, path string, in IncludeExclude) locationCond {
	n := len(c.locations.names)
	lc := locationCond{
		set:  len(in.Include)+len(in.Exclude) > 0,
		incl: newBitset(n),
		excl: newBitset(n),
	}
	if len(in.Include) == 0 {
		lc.inclAll = true // exclude-only: everywhere else
	}
	for i, name := range in.Include {
		switch name {
		case "all":
			lc.inclAll = true
		case "all-trusted":
			lc.inclTrusted = true
		default:
			c.locationEntry(d, fmt.Sprintf("%s.include[%d]", path, i), name, lc.incl)
		}
	}
	for i, name := range in.Exclude {
		p := fmt.Sprintf("%s.exclude[%d]", path, i)
		switch name {
		case "all":
			c.addf(d, p, "excluding all locations leaves the policy for nowhere; set state: disabled instead")
		case "all-trusted":
			lc.exclTrusted = true
		default:
			c.locationEntry(d, p, name, lc.excl)
		}
	}
	return lc
}

func (c *compiler) locationEntry(d *Document, path, name string, into bitset) {
	i, ok := c.locations.index[name]
	if !ok {
		c.addf(d, path, "unknown named location %q%s", name, didYouMean(name, append(append([]string{}, reservedLocations...), c.locations.names...)))
		return
	}
	into.set(i)
}
