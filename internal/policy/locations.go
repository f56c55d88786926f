package policy

import (
	"cmp"
	"math/bits"
	"net/netip"
	"slices"
)

// Named locations are compiled into one sorted table of disjoint address
// intervals, each labelled with the set of locations that contain it, so
// looking up a request's IP is one binary search however many locations
// and ranges there are, with no allocation.

// bitset is a set of small integers (location indexes).
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (b bitset) set(i int) { b[i/64] |= 1 << (i % 64) }

func (b bitset) has(i int) bool { return i/64 < len(b) && b[i/64]&(1<<(i%64)) != 0 }

func (b bitset) intersects(o bitset) bool {
	for i := range min(len(b), len(o)) {
		if b[i]&o[i] != 0 {
			return true
		}
	}
	return false
}

func (b bitset) empty() bool {
	for _, w := range b {
		if w != 0 {
			return false
		}
	}
	return true
}

// addr128 is an address in the IPv6 space; IPv4 addresses live at
// ::ffff:0:0/96 so one table holds both families.
type addr128 struct{ hi, lo uint64 }

func toAddr128(a netip.Addr) addr128 {
	b := a.Unmap().As16()
	var hi, lo uint64
	for i := range 8 {
		hi = hi<<8 | uint64(b[i])
		lo = lo<<8 | uint64(b[8+i])
	}
	return addr128{hi, lo}
}

func (a addr128) cmp(o addr128) int {
	if c := cmp.Compare(a.hi, o.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, o.lo)
}

// next returns a+1 and whether it overflowed.
func (a addr128) next() (addr128, bool) {
	lo, carry := bits.Add64(a.lo, 1, 0)
	hi, over := bits.Add64(a.hi, 0, carry)
	return addr128{hi, lo}, over != 0
}

// prefixRange returns the first and last address of p.
func prefixRange(p netip.Prefix) (first, last addr128) {
	p = p.Masked()
	first = toAddr128(p.Addr())
	n := p.Bits()
	if p.Addr().Is4() {
		n += 96
	}
	// host bits: 128-n low bits set.
	var mhi, mlo uint64
	switch {
	case n <= 0:
		mhi, mlo = ^uint64(0), ^uint64(0)
	case n < 64:
		mhi, mlo = ^uint64(0)>>n, ^uint64(0)
	case n < 128:
		mlo = ^uint64(0) >> (n - 64)
	}
	last = addr128{first.hi | mhi, first.lo | mlo}
	return first, last
}

// ipInterval is a maximal run of addresses with the same location set.
type ipInterval struct {
	first, last addr128
	locs        bitset
}

// locationTable is the compiled form of every named location.
type locationTable struct {
	names     []string
	index     map[string]int
	trusted   bitset
	intervals []ipInterval
	countries map[string]bitset
	unknown   bitset // locations with include_unknown_countries
	none      bitset // the empty set, sized like the others
}

// locationInput is one validated named location.
type locationInput struct {
	name                    string
	trusted                 bool
	prefixes                []netip.Prefix
	countries               []string
	includeUnknownCountries bool
}

func buildLocations(in []locationInput) *locationTable {
	n := len(in)
	t := &locationTable{
		index:     make(map[string]int, n),
		trusted:   newBitset(n),
		countries: make(map[string]bitset),
		unknown:   newBitset(n),
		none:      newBitset(n),
	}
	for i, l := range in {
		t.names = append(t.names, l.name)
		t.index[l.name] = i
		if l.trusted {
			t.trusted.set(i)
		}
		if l.includeUnknownCountries {
			t.unknown.set(i)
		}
		for _, c := range l.countries {
			if t.countries[c] == nil {
				t.countries[c] = newBitset(n)
			}
			t.countries[c].set(i)
		}
	}
	t.intervals = sweep(in, n)
	return t
}

type edge struct {
	at    addr128
	loc   int
	delta int
}

// sweep turns possibly overlapping prefixes into disjoint intervals.
func sweep(in []locationInput, n int) []ipInterval {
	var edges []edge
	for i, l := range in {
		for _, p := range l.prefixes {
			first, last := prefixRange(p)
			edges = append(edges, edge{first, i, +1})
			// A range that runs to the very last address needs no closing
			// edge: the final interval runs to the end.
			if end, over := last.next(); !over {
				edges = append(edges, edge{end, i, -1})
			}
		}
	}
	slices.SortFunc(edges, func(a, b edge) int { return a.at.cmp(b.at) })
	count := make([]int, n)
	var out []ipInterval
	for k := 0; k < len(edges); {
		at := edges[k].at
		for ; k < len(edges) && edges[k].at == at; k++ {
			count[edges[k].loc] += edges[k].delta
		}
		locs, nonEmpty := activeSet(count, n)
		if !nonEmpty {
			continue
		}
		last := addr128{^uint64(0), ^uint64(0)}
		if k < len(edges) {
			last = edges[k].at
			last.hi, last.lo = decrement(last)
		}
		out = appendInterval(out, ipInterval{first: at, last: last, locs: locs})
	}
	return out
}

func decrement(a addr128) (uint64, uint64) {
	lo, borrow := bits.Sub64(a.lo, 1, 0)
	hi, _ := bits.Sub64(a.hi, 0, borrow)
	return hi, lo
}

func activeSet(count []int, n int) (bitset, bool) {
	b := newBitset(n)
	nonEmpty := false
	for i, c := range count {
		if c > 0 {
			b.set(i)
			nonEmpty = true
		}
	}
	return b, nonEmpty
}

// appendInterval merges iv into the previous interval when they touch and
// carry the same locations, keeping the table small.
func appendInterval(out []ipInterval, iv ipInterval) []ipInterval {
	if k := len(out) - 1; k >= 0 && slices.Equal(out[k].locs, iv.locs) {
		if nx, over := out[k].last.next(); !over && nx == iv.first {
			out[k].last = iv.last
			return out
		}
	}
	return append(out, iv)
}

// byIP returns the locations containing ip; never nil.
func (t *locationTable) byIP(ip netip.Addr) bitset {
	if !ip.IsValid() || len(t.intervals) == 0 {
		return t.none
	}
	a := toAddr128(ip)
	lo, hi := 0, len(t.intervals)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.intervals[m].first.cmp(a) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 || t.intervals[lo-1].last.cmp(a) < 0 {
		return t.none
	}
	return t.intervals[lo-1].locs
}

// byCountry returns the locations matching country ("" = unknown).
func (t *locationTable) byCountry(country string) bitset {
	if country == "" {
		return t.unknown
	}
	if b, ok := t.countries[country]; ok {
		return b
	}
	return t.none
}
