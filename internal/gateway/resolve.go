package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Target is what a route's rules ask of a request: the app policies see
// and the authentication context, or no sign-in at all.
type Target struct {
	App       string
	Context   string
	Anonymous bool
	// SingleUse and MaxAge are the rule's elevation: proofs count once,
	// or only for MaxAge after the step-up.
	SingleUse bool
	MaxAge    time.Duration
}

// Resolve says what the route named name asks of a request with method
// and path, by the same normalisation, admission and rule matching the
// gateway applies to a live request, so that a policy scenario written
// as "POST /transfers on the bank route" is judged on the context the
// gateway would really ask for.
func Resolve(routes []Route, name, method, path string) (Target, error) {
	var cfg *Route
	for i := range routes {
		if routes[i].Name == name {
			cfg = &routes[i]
		}
	}
	if cfg == nil {
		names := make([]string, len(routes))
		for i, r := range routes {
			names[i] = r.Name
		}
		return Target{}, fmt.Errorf("no gateway route is named %q; the routes are: %s", name, strings.Join(names, ", "))
	}
	compiled, err := compileRoutes([]Route{*cfg})
	if err != nil {
		return Target{}, err
	}
	rt := compiled[0]
	method = strings.ToUpper(method)
	if method == "" {
		method = http.MethodGet
	}
	p, err := normalize(path)
	if err != nil {
		return Target{}, fmt.Errorf("the gateway refuses path %q (400): %w; write the path as a browser sends it, without dot segments, encoded slashes or backslashes", path, err)
	}
	if find(compiled, rt.host, p) == nil {
		return Target{}, fmt.Errorf("path %q is not under route %s (it serves %s/...)", path, name, rt.prefix)
	}
	r := &http.Request{Method: method, URL: &url.URL{Path: p}, Header: http.Header{}}
	if no := rt.admit(r, p); no != nil {
		return Target{}, fmt.Errorf("the gateway refuses %s %s: %s", method, path, no.msg)
	}
	ru := rt.ruleFor(method, p)
	return Target{App: rt.app, Context: ru.context, Anonymous: ru.anonymous, SingleUse: ru.singleUse, MaxAge: ru.maxAge}, nil
}
