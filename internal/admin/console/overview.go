package console

import (
	"net/http"
	"slices"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
)

// periods are the overview's choices, in the order the selector shows.
var periods = []struct {
	Key   string
	Label string
	D     time.Duration
}{
	{"24h", "24 hours", 24 * time.Hour},
	{"7d", "7 days", 7 * 24 * time.Hour},
	{"30d", "30 days", 30 * 24 * time.Hour},
}

// overviewView is the overview page's data.
type overviewView struct {
	Period       string
	PeriodLabel  string
	Periods      []periodLink
	Overview     admin.Overview
	Time         timeChart
	Policies     policyChart
	Completion   ring
	HasStepUps   bool
	TopPolicies  []admin.PolicyStats
	HasDecisions bool
}

type periodLink struct {
	Key, Label string
	Current    bool
}

// overview shows what the policies did over the chosen period.
func (c *Console) overview(w http.ResponseWriter, r *http.Request, who *caller) error {
	key := r.URL.Query().Get("period")
	d := periods[0]
	for _, p := range periods {
		if p.Key == key {
			d = p
		}
	}
	o, err := c.Service.Overview(r.Context(), d.D)
	if err != nil {
		return err
	}
	// Policies that applied without asking for anything are left out:
	// the chart is about friction.
	top := slices.DeleteFunc(slices.Clone(o.Policies), func(p admin.PolicyStats) bool { return p.Triggered() == 0 })
	top = top[:min(len(top), policyMax)]
	v := overviewView{Period: d.Key, PeriodLabel: d.Label, Overview: o, Time: newTimeChart(o),
		Policies: newPolicyChart(top), Completion: newRing(o.CompletionRate()),
		HasStepUps: o.Totals.Challenge > 0 || o.StepUps > 0, TopPolicies: top}
	v.HasDecisions = o.Totals.Allow+o.Totals.Challenge+o.Totals.Block > 0
	for _, p := range periods {
		v.Periods = append(v.Periods, periodLink{Key: p.Key, Label: p.Label, Current: p.Key == d.Key})
	}
	c.render(w, r, who, http.StatusOK, "overview", view{Title: "Overview", Section: "overview", Notice: noticeOf(r), Data: v})
	return nil
}
