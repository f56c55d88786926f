package config

import (
	"fmt"
	"time"
)

// Risk configures sign-in and user risk detection (package risk).
type Risk struct {
	// MaxSpeedKmh is the travel speed between two sign-ins above which
	// the second one is impossible travel.
	MaxSpeedKmh int `yaml:"max_speed_kmh"`
	// LearningSignIns is how many sign-ins a user makes before travel and
	// unfamiliar properties are judged: before that nothing is familiar.
	LearningSignIns int `yaml:"learning_sign_ins"`
	// IPLists are files of networks to flag (Tor exits, threat feeds).
	IPLists []RiskIPList `yaml:"ip_lists,omitempty"`
	// SprayThreshold is how many accounts may fail from one address or
	// network within an hour before its sign-ins are password spray.
	SprayThreshold int `yaml:"spray_threshold"`
	// BruteForceThreshold is how many failures one account may have
	// within an hour before its sign-ins are brute force.
	BruteForceThreshold int `yaml:"brute_force_threshold"`
	// UserRiskLowAgeOut is how long a low user risk lasts.
	UserRiskLowAgeOut Duration `yaml:"user_risk_low_age_out"`
}

// RiskIPList is one list file.
type RiskIPList struct {
	Name  string `yaml:"name"`
	File  string `yaml:"file"`
	Level string `yaml:"level"` // low, medium or high
}

func defaultRisk() Risk {
	return Risk{MaxSpeedKmh: 1000, LearningSignIns: 5, SprayThreshold: 20, BruteForceThreshold: 10,
		UserRiskLowAgeOut: Duration(7 * 24 * time.Hour)}
}

func (r Risk) validate(ps *problems) {
	if r.MaxSpeedKmh < 100 || r.MaxSpeedKmh > 20000 {
		ps.add("risk.max_speed_kmh", "must be from 100 to 20000 (got %d); airliners fly about 900", r.MaxSpeedKmh)
	}
	if r.LearningSignIns < 0 || r.LearningSignIns > 1000 {
		ps.add("risk.learning_sign_ins", "must be from 0 to 1000 (got %d)", r.LearningSignIns)
	}
	if r.SprayThreshold < 2 {
		ps.add("risk.spray_threshold", "must be at least 2 (got %d)", r.SprayThreshold)
	}
	if r.BruteForceThreshold < 2 {
		ps.add("risk.brute_force_threshold", "must be at least 2 (got %d)", r.BruteForceThreshold)
	}
	ps.positive("risk.user_risk_low_age_out", r.UserRiskLowAgeOut, "168h")
	for i, l := range r.IPLists {
		path := fmt.Sprintf("risk.ip_lists[%d]", i)
		if l.Name == "" {
			ps.add(path+".name", "is required; name the list, like tor-exits")
		}
		if l.File == "" {
			ps.add(path+".file", "is required: a file with one address or CIDR per line")
		}
		if l.Level != "low" && l.Level != "medium" && l.Level != "high" {
			ps.add(path+".level", "%q is not a level; use low, medium or high", l.Level)
		}
	}
}
