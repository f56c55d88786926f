//go:build !cgo

package sqlclass

// ParserAvailable reports whether this build can parse SQL. This build
// has no cgo, so no parser: every string is ClassUnknown and hits every
// label, which fails closed.
const ParserAvailable = false

// Classify cannot parse without cgo: every string is ClassUnknown, with
// ErrNoParser.
func Classify(string) (Facts, error) {
	return unknownFacts(), ErrNoParser
}

func classifyText(string, bool, func(string) (Statement, bool)) (Facts, error) {
	return unknownFacts(), ErrNoParser
}
