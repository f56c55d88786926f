package risk

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// maxIPListEntries bounds one list in memory (about 50 bytes an entry
// while parsing): a few million is more than any published anonymiser or
// threat feed, and far less than a file that is not a list at all.
const maxIPListEntries = 5_000_000

// IPList is a named set of addresses, such as Tor exit nodes, a VPN
// provider's ranges or a threat feed. A sign-in from one of them gets a
// detection at the list's Level.
//
// The prefixes are held as sorted, merged address ranges, so a lookup is
// one binary search: a list of 10,000 prefixes answers in well under a
// microsecond.
type IPList struct {
	Name  string
	Level Level
	// ranges are sorted, disjoint and never adjacent; IPv4 sorts before
	// IPv6, so one slice holds both.
	ranges []addrRange
}

type addrRange struct{ first, last netip.Addr }

// NewIPList builds a list from prefixes. Overlapping and adjacent
// prefixes are merged; IPv4-mapped IPv6 prefixes are stored as IPv4, as
// Contains looks addresses up.
func NewIPList(name string, level Level, prefixes []netip.Prefix) IPList {
	rs := make([]addrRange, 0, len(prefixes))
	for _, p := range prefixes {
		if p = canonical(p); p.IsValid() {
			rs = append(rs, addrRange{p.Addr(), lastAddr(p)})
		}
	}
	slices.SortFunc(rs, func(a, b addrRange) int { return a.first.Compare(b.first) })
	merged := rs[:0]
	for _, r := range rs {
		if n := len(merged); n > 0 {
			last := &merged[n-1]
			if r.first.Compare(last.last) <= 0 || last.last.Next() == r.first {
				if r.last.Compare(last.last) > 0 {
					last.last = r.last
				}
				continue
			}
		}
		merged = append(merged, r)
	}
	return IPList{Name: name, Level: level, ranges: slices.Clip(merged)}
}

// ParseIPList reads a list file: one address or CIDR prefix per line.
// Blank lines are skipped, and "#" or ";" starts a comment (the latter is
// how Spamhaus DROP annotates its entries). Anything else on a line is an
// error naming the line, so a file in the wrong format fails at startup
// rather than silently matching nothing.
func ParseIPList(name string, level Level, r io.Reader) (IPList, error) {
	var prefixes []netip.Prefix
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		p, err := parseEntry(line)
		if err != nil {
			return IPList{}, fmt.Errorf("ip list %s: line %d: %w", name, n, err)
		}
		if len(prefixes) >= maxIPListEntries {
			return IPList{}, fmt.Errorf("ip list %s: more than %d entries", name, maxIPListEntries)
		}
		prefixes = append(prefixes, p)
	}
	if err := sc.Err(); err != nil {
		return IPList{}, fmt.Errorf("ip list %s: line %d: %w", name, n+1, err)
	}
	return NewIPList(name, level, prefixes), nil
}

func parseEntry(s string) (netip.Prefix, error) {
	if strings.ContainsAny(s, " \t") {
		return netip.Prefix{}, fmt.Errorf("%q: want one address or CIDR prefix per line", s)
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix", s)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// canonical masks host bits (lists often write 192.0.2.1/24 for the
// network) and turns an IPv4-mapped prefix into IPv4.
func canonical(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return netip.Prefix{}
	}
	a := p.Addr().WithZone("")
	bits := p.Bits()
	if a.Is4In6() {
		if bits < 96 {
			// Covers more than the mapped space; keep it as IPv6.
			return netip.PrefixFrom(a, bits).Masked()
		}
		a, bits = a.Unmap(), bits-96
	}
	return netip.PrefixFrom(a, bits).Masked()
}

// lastAddr is the highest address in a masked prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	off := 0
	if p.Addr().Is4() {
		off = 12
	}
	for i := off*8 + p.Bits(); i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		return a.Unmap()
	}
	return a
}

// Contains reports whether ip is on the list.
func (l IPList) Contains(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap().WithZone("")
	// The first range that starts after ip; the one before it is the
	// only one that can hold ip.
	i := sort.Search(len(l.ranges), func(i int) bool { return l.ranges[i].first.Compare(ip) > 0 })
	return i > 0 && l.ranges[i-1].last.Compare(ip) >= 0
}

// Len is the number of merged ranges the list holds.
func (l IPList) Len() int { return len(l.ranges) }

// ipLists reports every list the attempt's address is on, each as its
// own detection so the log shows which feed spoke.
func (e *Engine) ipLists(in SignIn) []Detection {
	var ds []Detection
	for _, l := range e.cfg.IPLists {
		if l.Contains(in.IP) {
			ds = append(ds, Detection{
				Type:   TypeIPList,
				Level:  l.Level,
				Reason: ReasonListedIP,
				Evidence: map[string]string{
					"list": l.Name,
					"ip":   in.IP.Unmap().WithZone("").String(),
				},
			})
		}
	}
	return ds
}
