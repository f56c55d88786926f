package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
)

// CEL conditions (device filters and free expressions) see three
// namespaces, declared as typed qualified names rather than as dyn maps:
// that way the checker rejects "device.is_compliant + 1" or a misspelled
// "device.trust_typ" when the policy is loaded, not when a user signs in.

// CELCostLimit bounds the work one expression may do per evaluation. A
// policy condition is a handful of comparisons; the limit leaves room for
// list macros over a user's groups or a device's attributes while keeping
// a pathological expression from stalling sign-ins.
const CELCostLimit = 10_000

// maxExpressionLength bounds an expression's source.
const maxExpressionLength = 4096

// celVars are the names an expression may use, in documentation order.
var celVars = []struct {
	name string
	typ  *cel.Type
	doc  string
}{
	{"device.id", cel.StringType, "device id, empty when unknown"},
	{"device.is_compliant", cel.BoolType, "whether the device is marked compliant"},
	{"device.trust_type", cel.StringType, `"managed", "registered" or empty`},
	{"device.attributes", cel.MapType(cel.StringType, cel.StringType), "free-form device attributes"},
	{"user.id", cel.StringType, "user id (client id for a service client)"},
	{"user.username", cel.StringType, "username, empty for a service client"},
	{"user.groups", cel.ListType(cel.StringType), "groups, including those they are nested in"},
	{"user.roles", cel.ListType(cel.StringType), "roles"},
	{"user.is_client", cel.BoolType, "true for a service client (workload identity)"},
	{"request.app", cel.StringType, "app (client id) being accessed"},
	{"request.auth_contexts", cel.ListType(cel.StringType), "requested authentication contexts"},
	{"request.action", cel.StringType, "user action, or empty"},
	{"request.ip", cel.StringType, "client IP address, empty when unknown"},
	{"request.country", cel.StringType, "ISO country code, empty when unknown"},
	{"request.platform", cel.StringType, "device platform"},
	{"request.client_app", cel.StringType, "client app type"},
	{"request.sign_in_risk", cel.StringType, "none, low, medium or high"},
	{"request.user_risk", cel.StringType, "none, low, medium or high"},
	{"request.time", cel.TimestampType, "when the request started"},
	{"statement.class", cel.StringType, "a SQL statement's class through the database gateway, empty otherwise"},
	{"statement.command", cel.StringType, "a SQL statement's command (SELECT, DROP TABLE, ...)"},
	{"statement.tables", cel.ListType(cel.StringType), "the relations a SQL statement names"},
	{"statement.labels", cel.ListType(cel.StringType), "the database's labels a SQL statement hits"},
}

func newCELEnv() (*cel.Env, error) {
	opts := []cel.EnvOption{
		ext.Strings(),
		cel.ParserExpressionSizeLimit(maxExpressionLength),
		cel.ParserRecursionLimit(64),
	}
	for _, v := range celVars {
		opts = append(opts, cel.Variable(v.name, v.typ))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("build cel environment: %w", err)
	}
	return env, nil
}

// expectingList is the parser's list of every token it could have
// accepted; it is longer than the expression and helps nobody.
var expectingList = regexp.MustCompile(` expecting (\{[^}]*\}|\S+)`)

// celProgram is a checked, planned expression; safe for concurrent use.
type celProgram struct {
	src string
	prg cel.Program
}

// celIssue is one compile error with its position inside the expression.
type celIssue struct {
	line, column int // 1-based line, 0-based column as CEL reports them
	msg          string
}

// compileCEL parses, type-checks and plans src, which must be a bool.
func compileCEL(env *cel.Env, src string) (*celProgram, []celIssue) {
	ast, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		var out []celIssue
		for _, e := range iss.Errors() {
			msg := expectingList.ReplaceAllString(e.Message, "")
			out = append(out, celIssue{line: e.Location.Line(), column: e.Location.Column(), msg: msg})
		}
		return nil, out
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) {
		return nil, []celIssue{{msg: fmt.Sprintf("the expression gives a %s; it must give true or false", t)}}
	}
	prg, err := env.Program(ast, cel.CostLimit(CELCostLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, []celIssue{{msg: err.Error()}}
	}
	return &celProgram{src: src, prg: prg}, nil
}

// errNotBool cannot happen for a checked program, but an interpreter bug
// must not become a silent match.
var errNotBool = errors.New("expression did not give true or false")

// eval runs the program against the request.
func (p *celProgram) eval(act *activation) (bool, error) {
	out, _, err := p.prg.Eval(act)
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, errNotBool
	}
	return b, nil
}

// activation resolves CEL names against one request. It copies the
// request so the caller's Request never escapes to the heap on the path
// that does not use CEL.
type activation struct {
	req    Request
	groups []string // direct and nested groups
}

var _ interpreter.Activation = (*activation)(nil)

func (a *activation) Parent() interpreter.Activation { return nil }

// ResolveName returns ref.Val values directly so CEL does not adapt them
// through reflection.
func (a *activation) ResolveName(name string) (any, bool) {
	if v, ok := a.device(name); ok {
		return v, true
	}
	if v, ok := a.user(name); ok {
		return v, true
	}
	if v, ok := a.statement(name); ok {
		return v, true
	}
	return a.request(name)
}

func (a *activation) statement(name string) (ref.Val, bool) {
	st := &a.req.Statement
	switch name {
	case "statement.class":
		return types.String(st.Class), true
	case "statement.command":
		return types.String(st.Command), true
	case "statement.tables":
		return types.NewStringList(types.DefaultTypeAdapter, st.Tables), true
	case "statement.labels":
		return types.NewStringList(types.DefaultTypeAdapter, st.Labels), true
	}
	return nil, false
}

func (a *activation) device(name string) (ref.Val, bool) {
	d := &a.req.Device
	switch name {
	case "device.id":
		return types.String(d.ID), true
	case "device.is_compliant":
		return types.Bool(d.IsCompliant), true
	case "device.trust_type":
		return types.String(d.TrustType), true
	case "device.attributes":
		attrs := d.Attributes
		if attrs == nil {
			attrs = map[string]string{}
		}
		return types.NewStringStringMap(types.DefaultTypeAdapter, attrs), true
	}
	return nil, false
}

func (a *activation) user(name string) (ref.Val, bool) {
	s := &a.req.Subject
	switch name {
	case "user.id":
		return types.String(s.ID), true
	case "user.username":
		return types.String(s.Username), true
	case "user.groups":
		return types.NewStringList(types.DefaultTypeAdapter, a.groups), true
	case "user.roles":
		return types.NewStringList(types.DefaultTypeAdapter, s.Roles), true
	case "user.is_client":
		return types.Bool(s.Client), true
	}
	return nil, false
}

func (a *activation) request(name string) (any, bool) {
	r := &a.req
	switch name {
	case "request.app":
		return types.String(r.App), true
	case "request.auth_contexts":
		return types.NewStringList(types.DefaultTypeAdapter, r.AuthContexts), true
	case "request.action":
		return types.String(r.Action), true
	case "request.ip":
		return types.String(ipString(r.IP)), true
	case "request.country":
		return types.String(r.Country), true
	case "request.platform":
		return types.String(platformOf(r)), true
	case "request.client_app":
		return types.String(r.ClientApp), true
	case "request.sign_in_risk":
		return types.String(levelName(r.SignInRisk)), true
	case "request.user_risk":
		return types.String(levelName(r.UserRisk)), true
	case "request.time":
		return types.Timestamp{Time: r.Now.Round(0).UTC()}, true
	}
	return nil, false
}

func ipString(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	return ip.Unmap().WithZone("").String()
}

// levelName normalises an empty risk to "none" so expressions compare
// against one spelling.
func levelName(s string) string {
	if s == "" {
		return RiskNone
	}
	return s
}

func platformOf(r *Request) string {
	if r.Platform == "" {
		return PlatformUnknown
	}
	return r.Platform
}
