package policy

import "strings"

// uaPlatforms is checked in order: more specific markers first, because
// Android and ChromeOS user agents also say "Linux", and iOS ones say
// "like Mac OS X".
var uaPlatforms = []struct{ marker, platform string }{
	{"Windows Phone", PlatformWindows},
	{"CrOS", PlatformChromeOS},
	{"Android", PlatformAndroid},
	{"iPhone", PlatformIOS},
	{"iPad", PlatformIOS},
	{"iPod", PlatformIOS},
	{"iOS", PlatformIOS},
	{"Macintosh", PlatformMacOS},
	{"Mac OS X", PlatformMacOS},
	{"Windows", PlatformWindows},
	{"Linux", PlatformLinux},
	{"X11", PlatformLinux},
}

// PlatformFromUserAgent names the device platform a User-Agent header
// claims: windows, macos, linux, ios, android, chromeos, or unknown.
//
// The header is chosen by the client, so a platform condition is a way
// to target policies, never a security boundary on its own: pair it with
// a device filter or compliance. iPadOS Safari presents itself as macOS by
// default and is reported as macos.
func PlatformFromUserAgent(ua string) string {
	if len(ua) > 1024 {
		ua = ua[:1024] // real agents are far shorter; bound the scan
	}
	for _, p := range uaPlatforms {
		if strings.Contains(ua, p.marker) {
			return p.platform
		}
	}
	return PlatformUnknown
}
