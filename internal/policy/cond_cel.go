package policy

import (
	"fmt"
	"strings"
)

// Device filters and free expressions are CEL. A rule that fails at run
// time (a missing map key, the cost limit) counts as matching the policy
// — include-mode filter and expression true, exclude-mode filter false —
// so a broken rule can never silently switch a policy off. Authors guard
// optional attributes with has(device.attributes.x).

type deviceFilter struct {
	prg     *celProgram
	exclude bool
}

func (c *compiler) deviceFilter(d *Document, path string, in DeviceFilter) deviceFilter {
	if in.Mode == "" && in.Rule == "" {
		return deviceFilter{}
	}
	var f deviceFilter
	switch in.Mode {
	case "include":
	case "exclude":
		f.exclude = true
	case "":
		c.addf(d, path+".mode", "is required; include (the policy applies to matching devices) or exclude (it applies to all others)")
	default:
		c.addf(d, path+".mode", "%q is not a mode%s", in.Mode, didYouMean(in.Mode, []string{"include", "exclude"}))
	}
	if c.required(d, path+".rule", in.Rule, `write a CEL rule like device.trust_type == "managed"`) {
		f.prg = c.cel(d, path+".rule", in.Rule)
	}
	return f
}

// cel compiles one expression, reporting each CEL issue at its line in
// the policy file.
func (c *compiler) cel(d *Document, path, src string) *celProgram {
	prg, issues := compileCEL(c.env, src)
	for _, is := range issues {
		p := Problem{Path: path, Message: "CEL: " + is.msg}
		if d != nil {
			p.File, p.Line = d.File, d.line(path)
			if is.line > 0 {
				p.Message = fmt.Sprintf("CEL: %s (column %d)", is.msg, is.column+1)
				if p.Line > 0 {
					p.Line += is.line - 1 + blockScalarOffset(src)
				}
			}
		}
		c.problems = append(c.problems, p)
	}
	return prg
}

// blockScalarOffset is 1 when src spans several lines, as a YAML block
// scalar (| or >) does: its first line is the one after the key.
func blockScalarOffset(src string) int {
	if strings.Contains(strings.TrimRight(src, "\n"), "\n") || strings.HasSuffix(src, "\n") {
		return 1
	}
	return 0
}

// matchCEL evaluates the device filter and the free condition.
func (p *compiledPolicy) matchCEL(ctx *evalCtx, r *Request) (Reason, string) {
	if p.device.prg != nil {
		ok, err := p.device.prg.eval(ctx.activation(r))
		if err != nil {
			// Fail closed: the policy applies (see the top of this file).
			return "", "device filter failed, so it counts as applying: " + err.Error()
		}
		if ok == p.device.exclude {
			if p.device.exclude {
				return ReasonDeviceFilterExcluded, ""
			}
			return ReasonDeviceFilterNotMatched, ""
		}
	}
	if p.expr != nil {
		ok, err := p.expr.eval(ctx.activation(r))
		if err != nil {
			return "", "condition failed, so it counts as applying: " + err.Error()
		}
		if !ok {
			return ReasonConditionNotMatched, ""
		}
	}
	return "", ""
}
