package risk

import (
	"strconv"
	"strings"
)

// Properties unfamiliar compares, in the order evidence lists them.
const (
	PropertyDevice   = "device"
	PropertyNetwork  = "network"
	PropertyCountry  = "country"
	PropertyBrowser  = "browser"
	PropertyPlatform = "platform"
)

// unfamiliar compares the attempt's device, network, country, browser
// and platform with the user's recent successful sign-ins. A stolen
// password is usually used from the attacker's own machine and network,
// so several new properties at once are the signal; any one of them
// alone is ordinary life (a new phone, a café).
//
// Scoring: one new property is low; a new country, or two or more new
// properties, is medium. It never reaches high on its own: that takes
// evidence of an attack, such as impossible travel or a listed address.
//
// A property the attempt does not carry (no browser parsed, country
// unknown) is not compared, with one exception: an attempt without a
// device id from a user whose recent sign-ins carried one is a new
// device, since clearing cookies is exactly what an attacker's fresh
// browser looks like.
func (e *Engine) unfamiliar(in SignIn, recent []SignIn) (Detection, bool) {
	if e.learning(recent) || len(recent) == 0 {
		return Detection{}, false
	}
	var props []string
	ev := map[string]string{}
	if newDevice(in, recent) {
		props = append(props, PropertyDevice)
	}
	if net, ok := newNetwork(in, recent); ok {
		props = append(props, PropertyNetwork)
		ev["network"] = net
	}
	newCountry := in.Country != "" && seenAny(recent, func(s *SignIn) string { return s.Country }) &&
		!seen(recent, in.Country, func(s *SignIn) string { return s.Country })
	if newCountry {
		props = append(props, PropertyCountry)
		ev["country"] = in.Country
	}
	if in.Browser != "" && seenAny(recent, func(s *SignIn) string { return s.Browser }) &&
		!seen(recent, in.Browser, func(s *SignIn) string { return s.Browser }) {
		props = append(props, PropertyBrowser)
		ev["browser"] = in.Browser
	}
	if in.Platform != "" && seenAny(recent, func(s *SignIn) string { return s.Platform }) &&
		!seen(recent, in.Platform, func(s *SignIn) string { return s.Platform }) {
		props = append(props, PropertyPlatform)
		ev["platform"] = in.Platform
	}
	if len(props) == 0 {
		return Detection{}, false
	}
	level := Low
	if newCountry || len(props) >= 2 {
		level = Medium
	}
	ev["properties"] = strings.Join(props, ",")
	ev["compared_sign_ins"] = strconv.Itoa(len(recent))
	return Detection{Type: TypeUnfamiliar, Level: level, Reason: ReasonUnfamiliarProperties, Evidence: ev}, true
}

// newDevice: see unfamiliar for why an empty id can be new.
func newDevice(in SignIn, recent []SignIn) bool {
	id := func(s *SignIn) string { return s.DeviceID }
	if !seenAny(recent, id) {
		return false
	}
	return in.DeviceID == "" || !seen(recent, in.DeviceID, id)
}

// newNetwork compares the ASN when the attempt's is known, and the
// /24 or /48 otherwise, and also accepts the same block under an ASN
// the database did not know before. It returns how it names the network.
func newNetwork(in SignIn, recent []SignIn) (string, bool) {
	if !in.IP.IsValid() && in.ASN == 0 {
		return "", false
	}
	block := network(in.IP)
	for _, s := range recent {
		if in.ASN != 0 && s.ASN == in.ASN {
			return "", false
		}
		if block.IsValid() && s.IP.IsValid() && network(s.IP) == block {
			return "", false
		}
	}
	if in.ASN != 0 {
		return "AS" + strconv.FormatUint(uint64(in.ASN), 10), true
	}
	return block.String(), true
}

func seen(recent []SignIn, v string, f func(*SignIn) string) bool {
	for i := range recent {
		if f(&recent[i]) == v {
			return true
		}
	}
	return false
}

// seenAny reports whether any recent sign-in has the property at all;
// if none does (an app that sets no device cookie, a history from before
// browsers were recorded), every value would look new.
func seenAny(recent []SignIn, f func(*SignIn) string) bool {
	for i := range recent {
		if f(&recent[i]) != "" {
			return true
		}
	}
	return false
}
