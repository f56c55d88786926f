package config

import "time"

// SignInLog configures the sign-in log (package audit).
type SignInLog struct {
	// Buffer is how many entries may wait to be written.
	Buffer int `yaml:"buffer"`
	// Overflow is what a decision does when the buffer is full: "block"
	// waits for room, "fail-closed" refuses the request. Neither drops
	// an entry.
	Overflow string `yaml:"overflow"`
	// Retention is how long entries are kept.
	Retention Duration `yaml:"retention"`
}

func defaultSignInLog() SignInLog {
	return SignInLog{Buffer: 8192, Overflow: "block", Retention: Duration(30 * 24 * time.Hour)}
}

func (s SignInLog) validate(ps *problems) {
	if s.Buffer < 16 || s.Buffer > 1<<20 {
		ps.add("signin_log.buffer", "must be from 16 to 1048576 (got %d)", s.Buffer)
	}
	if s.Overflow != "block" && s.Overflow != "fail-closed" {
		ps.add("signin_log.overflow", "must be block or fail-closed (got %q)", s.Overflow)
	}
	ps.positive("signin_log.retention", s.Retention, "720h")
}
