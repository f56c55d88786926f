package policy

import "testing"

func TestPlatformFromUserAgent(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, ua, want string }{
		{"ok/windows-edge", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0", PlatformWindows},
		{"ok/macos-safari", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15", PlatformMacOS},
		{"ok/linux-firefox", "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", PlatformLinux},
		{"ok/iphone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1", PlatformIOS},
		{"ok/ipad", "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", PlatformIOS},
		{"ok/android", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36", PlatformAndroid},
		{"ok/chromeos", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", PlatformChromeOS},
		{"ok/windows-phone", "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1) Edge/15.15063", PlatformWindows},
		{"fail/curl", "curl/8.4.0", PlatformUnknown},
		{"fail/empty", "", PlatformUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := PlatformFromUserAgent(tt.ua); got != tt.want {
				t.Errorf("PlatformFromUserAgent(%q) = %q, want %q", tt.ua, got, tt.want)
			}
		})
	}
}
