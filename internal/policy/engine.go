package policy

import "sync/atomic"

// Engine holds the current Snapshot. Requests Load it without locks; a
// reload compiles a new one and swaps it in only when it compiled
// cleanly, so a bad edit never leaves the server half-loaded: it keeps
// enforcing the last good set, and the caller logs the problems.
type Engine struct {
	cur atomic.Pointer[Snapshot]
}

// NewEngine starts with s, or with Empty when s is nil.
func NewEngine(s *Snapshot) *Engine {
	if s == nil {
		s = Empty()
	}
	e := &Engine{}
	e.cur.Store(s)
	return e
}

// Load returns the current snapshot. Hold on to it for the whole of one
// request so every check in that request sees the same policies.
func (e *Engine) Load() *Snapshot { return e.cur.Load() }

// Swap installs s and returns the previous snapshot. A nil s is ignored
// (the current snapshot stays and is returned), so a caller can never
// switch enforcement off by passing a failed compile's result.
func (e *Engine) Swap(s *Snapshot) *Snapshot {
	if s == nil {
		return e.cur.Load()
	}
	return e.cur.Swap(s)
}

// Reload compiles docs and, if there are no problems, swaps the result
// in. On problems the current snapshot stays and the problems are
// returned for the caller to log.
func (e *Engine) Reload(dir Directory, docs ...*Document) Problems {
	s, probs := Compile(dir, docs...)
	if len(probs) > 0 {
		return probs
	}
	e.cur.Store(s)
	return nil
}

// Evaluate evaluates req against the current snapshot.
func (e *Engine) Evaluate(req *Request, opts EvaluateOptions) Decision {
	return e.Load().Evaluate(req, opts)
}
