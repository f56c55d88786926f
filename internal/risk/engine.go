package risk

import (
	"errors"
	"fmt"
	"time"
)

// Defaults for the zero values of Config.
const (
	// DefaultMaxSpeedKmh is faster than any airliner's average from gate
	// to gate, so only travel no one can make is impossible.
	DefaultMaxSpeedKmh = 1000
	// DefaultLearningSignIns: before a user has this many successful
	// sign-ins, every property of theirs is new, so travel and
	// unfamiliar-property detections would be noise.
	DefaultLearningSignIns = 5
	// DefaultFamiliarWindow is how many recent successful sign-ins make
	// up what is familiar: long enough to include a laptop used once a
	// month, short enough that a device sold last year is forgotten.
	DefaultFamiliarWindow = 50
	// DefaultSprayThreshold is how many distinct accounts with failed
	// attempts from one address or network within SprayWindow make a
	// password spray. An office behind one NAT sees a few typos an hour,
	// not twenty.
	DefaultSprayThreshold = 20
	// DefaultBruteForceThreshold is how many failed attempts on one
	// account within BruteForceWindow make a brute-force attack.
	DefaultBruteForceThreshold = 10
	// DefaultWindow is the look-back for spray and brute-force counts.
	DefaultWindow = time.Hour
	// DefaultUserRiskLowAgeOut is how long low user risk lasts without a
	// new detection.
	DefaultUserRiskLowAgeOut = 7 * 24 * time.Hour
)

// PasswordList is a list of breached or common passwords;
// *password.Breached is one.
type PasswordList interface {
	Contains(password string) bool
}

// Config tunes the engine. Zero values take the defaults above.
type Config struct {
	MaxSpeedKmh         float64
	LearningSignIns     int
	FamiliarWindow      int
	IPLists             []IPList
	SprayThreshold      int
	SprayWindow         time.Duration
	BruteForceThreshold int
	BruteForceWindow    time.Duration
	// Breached is checked by LeakedPassword; nil turns that detection
	// off.
	Breached PasswordList
}

// Engine scores sign-ins. It holds no mutable state, so one Engine
// serves every request concurrently; a configuration change builds a new
// one.
type Engine struct {
	cfg Config
}

// New checks c, fills in the defaults and returns an engine. Every
// problem is reported at once.
func New(c Config) (*Engine, error) {
	var errs []error
	bad := func(key string, v any) {
		errs = append(errs, fmt.Errorf("risk: %s must not be negative, got %v", key, v))
	}
	if c.MaxSpeedKmh < 0 {
		bad("max_speed_kmh", c.MaxSpeedKmh)
	}
	if c.LearningSignIns < 0 {
		bad("learning_sign_ins", c.LearningSignIns)
	}
	if c.FamiliarWindow < 0 {
		bad("familiar_window", c.FamiliarWindow)
	}
	if c.SprayThreshold < 0 {
		bad("spray_threshold", c.SprayThreshold)
	}
	if c.SprayWindow < 0 {
		bad("spray_window", c.SprayWindow)
	}
	if c.BruteForceThreshold < 0 {
		bad("brute_force_threshold", c.BruteForceThreshold)
	}
	if c.BruteForceWindow < 0 {
		bad("brute_force_window", c.BruteForceWindow)
	}
	for i, l := range c.IPLists {
		if l.Name == "" {
			errs = append(errs, fmt.Errorf("risk: ip_lists[%d] has no name", i))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.MaxSpeedKmh == 0 {
		c.MaxSpeedKmh = DefaultMaxSpeedKmh
	}
	def(&c.LearningSignIns, DefaultLearningSignIns)
	def(&c.FamiliarWindow, DefaultFamiliarWindow)
	def(&c.SprayThreshold, DefaultSprayThreshold)
	def(&c.BruteForceThreshold, DefaultBruteForceThreshold)
	if c.SprayWindow == 0 {
		c.SprayWindow = DefaultWindow
	}
	if c.BruteForceWindow == 0 {
		c.BruteForceWindow = DefaultWindow
	}
	// The learning period must fit inside what Recent returns, or it
	// would never end.
	c.FamiliarWindow = max(c.FamiliarWindow, c.LearningSignIns)
	c.IPLists = append([]IPList(nil), c.IPLists...)
	return &Engine{cfg: c}, nil
}

// Config returns the configuration in effect, defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// Assess scores one attempt against the history before it. h may be nil
// (no store yet): only the IP lists are checked then.
func (e *Engine) Assess(in SignIn, h History) Assessment {
	var a Assessment
	add := func(d Detection, ok bool) {
		if ok {
			a.Detections = append(a.Detections, d)
			a.SignInRisk = max(a.SignInRisk, d.Level)
		}
	}
	if h != nil {
		recent := h.Recent(in.UserID, e.cfg.FamiliarWindow)
		add(e.travel(in, recent))
		add(e.unfamiliar(in, recent))
	}
	for _, d := range e.ipLists(in) {
		add(d, true)
	}
	if h != nil {
		add(e.spray(in, h))
		add(e.bruteForce(in, h))
	}
	return a
}

// learning reports whether the user has too few successful sign-ins
// for their history to say what is normal for them.
func (e *Engine) learning(recent []SignIn) bool {
	return len(recent) < e.cfg.LearningSignIns
}
