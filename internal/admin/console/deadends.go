package console

import (
	"cmp"
	"net/http"
	"slices"

	"github.com/stepgate/stepgate/internal/deadend"
)

// deadEndsView is the dead-end page's data.
type deadEndsView struct {
	Report deadend.Report
	// Stranded are the policies that strand someone, and Clear counts
	// those that strand nobody.
	Stranded []deadEndPolicyView
	Clear    int
}

// deadEndRows bounds the users listed per policy, so a policy that
// strands a whole directory still gives a page that loads; the counts
// cover everyone, and stepgate policy deadends lists them all.
const deadEndRows = 200

// deadEndPolicyView is one policy that strands users, with its group
// counts in order and the first users.
type deadEndPolicyView struct {
	deadend.PolicyReport
	Groups []groupCount
	Shown  []deadend.Finding
	More   int
}

// groupCount is how many stranded users are in a group.
type groupCount struct {
	Group string
	Count int
}

// deadEnds lists, per enabled policy, the users in its scope who can
// never meet it with the methods they have, and what would fix it.
func (c *Console) deadEnds(w http.ResponseWriter, r *http.Request, who *caller) error {
	rep, err := c.in(r).DeadEnds(r.Context())
	if err != nil {
		return err
	}
	v := deadEndsView{Report: rep}
	for _, p := range rep.Policies {
		if len(p.Stranded) == 0 {
			v.Clear++
			continue
		}
		pv := deadEndPolicyView{PolicyReport: p, Shown: p.Stranded}
		if len(pv.Shown) > deadEndRows {
			pv.Shown, pv.More = pv.Shown[:deadEndRows], len(pv.Shown)-deadEndRows
		}
		for g, n := range p.Groups {
			pv.Groups = append(pv.Groups, groupCount{Group: g, Count: n})
		}
		slices.SortFunc(pv.Groups, func(a, b groupCount) int {
			if c := cmp.Compare(b.Count, a.Count); c != 0 {
				return c
			}
			return cmp.Compare(a.Group, b.Group)
		})
		v.Stranded = append(v.Stranded, pv)
	}
	c.render(w, r, who, http.StatusOK, "deadends", view{Title: "Dead ends", Section: "policies", Data: v})
	return nil
}
