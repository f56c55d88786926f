package policy

// nameSet is a set of strings tuned for the sizes policies have: most
// lists hold a few names, where a linear scan beats hashing; big ones
// (a group with many nested children) use a map.
type nameSet struct {
	small []string
	big   map[string]struct{}
}

const smallSetMax = 8

func newNameSet(names []string) nameSet {
	uniq := make([]string, 0, len(names))
	seen := make(map[string]struct{}, len(names))
	for _, n := range names {
		if _, dup := seen[n]; !dup {
			seen[n] = struct{}{}
			uniq = append(uniq, n)
		}
	}
	if len(uniq) <= smallSetMax {
		return nameSet{small: uniq}
	}
	return nameSet{big: seen}
}

func (s nameSet) has(name string) bool {
	if s.big != nil {
		_, ok := s.big[name]
		return ok
	}
	for _, n := range s.small {
		if n == name {
			return true
		}
	}
	return false
}

func (s nameSet) len() int {
	if s.big != nil {
		return len(s.big)
	}
	return len(s.small)
}

// hasAny reports whether any of names is in s.
func (s nameSet) hasAny(names []string) bool {
	if s.len() == 0 {
		return false
	}
	for _, n := range names {
		if s.has(n) {
			return true
		}
	}
	return false
}
