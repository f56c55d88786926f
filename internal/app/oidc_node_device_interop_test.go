package app_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestInteropNodeDeviceFlow runs test/interop/device.mjs: openid-client's
// device authorization grant (initiateDeviceAuthorization and its own
// poller, which honours interval and slow_down) against a real server,
// approved and then denied on the device page, with the ID token, the
// refresh and a refused second redemption checked by the library. Like
// TestInteropNodeOpenIDClient, it skips without node and
// test/interop/node_modules unless STEPGATE_REQUIRE_INTEROP is set.
func TestInteropNodeDeviceFlow(t *testing.T) {
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(interopDir, "node_modules", "openid-client", "package.json"))
	}
	if err != nil {
		msg := "openid-client interop needs node and test/interop/node_modules (run `make interop-deps`): " + err.Error()
		if os.Getenv("STEPGATE_REQUIRE_INTEROP") != "" {
			t.Fatal(msg + "; STEPGATE_REQUIRE_INTEROP is set, so this is a failure, not a skip")
		}
		t.Skip(msg)
	}

	s := startDevice(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "device.mjs")
	cmd.Dir = interopDir
	cmd.Env = append(os.Environ(),
		"STEPGATE_ISSUER="+s.base,
		"STEPGATE_DEVICE_CLIENT_ID="+cliClientID,
		"STEPGATE_USERNAME="+testUser,
		"STEPGATE_PASSWORD="+testPassword,
	)
	out, err := cmd.CombinedOutput()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("device.mjs did not finish in 60s:\n%s", out)
	}
	if err != nil {
		t.Fatalf("openid-client device flow failed (%v):\n%s", err, out)
	}
	t.Logf("openid-client device flow:\n%s", out)
}
