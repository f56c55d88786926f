package policy

import "strings"

// closest returns the candidate nearest to name, or "" when none is near
// enough to be a plausible typo.
func closest(name string, candidates []string) string {
	name = strings.ToLower(name)
	best, bestDist := "", -1
	for _, c := range candidates {
		d := distance(name, strings.ToLower(c))
		if d > min(len(c)/4+1, 3) {
			continue
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// didYouMean is " (did you mean X?)" or, when nothing is close, the list
// of valid values.
func didYouMean(name string, candidates []string) string {
	if s := closest(name, candidates); s != "" {
		return "; did you mean " + quote(s) + "?"
	}
	if len(candidates) == 0 {
		return ""
	}
	if len(candidates) > 12 {
		return ""
	}
	return "; valid values are " + strings.Join(candidates, ", ")
}

// distance is the optimal string alignment distance: insertions,
// deletions, substitutions and adjacent transpositions each cost one.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
