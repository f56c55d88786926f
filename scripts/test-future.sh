#!/usr/bin/env bash
# Runs go test with every clock in the test binaries moved forward, as if
# the suite ran on a later day: STEPGATE_TEST_CLOCK_SHIFT (default 8760h, a
# year) is added to what time.Now returns, for the tests, the product code
# and every library they call. Go reads the clock straight from the kernel,
# not through libc, so libfaketime cannot do this; instead the build gets an
# overlay of the standard library's time package (go help build, -overlay)
# whose Now adds the shift. Monotonic readings are untouched, so timeouts and
# durations behave as usual. Only these test builds carry the overlay.
#
# A test that pins a date while the code under test reads the real clock
# (a store expiring records, a token checked against time.Now) fails here
# long before it would fail in CI on that later day.
#
#   scripts/test-future.sh ./internal/authn/...
#   STEPGATE_TEST_CLOCK_SHIFT=43800h scripts/test-future.sh ./...
set -euo pipefail

shift_by=${STEPGATE_TEST_CLOCK_SHIFT:-8760h}
go=${GO:-go}
goroot=$("$go" env GOROOT)
src="$goroot/src/time/time.go"
dir=$(mktemp -d -t stepgate-future.XXXXXX)
trap 'rm -rf "$dir"' EXIT

# Now's first line reads the runtime clock; add the shift right after it.
if [ "$(grep -c $'^\tsec, nsec, mono := runtimeNow()$' "$src")" != 1 ]; then
	echo "test-future: $src no longer reads the clock the way this script expects;" >&2
	echo "test-future: update the patch in scripts/test-future.sh for $("$go" env GOVERSION)" >&2
	exit 1
fi
awk '{ print } /^\tsec, nsec, mono := runtimeNow\(\)$/ { print "\tsec += testClockShift" }' "$src" >"$dir/time.go"

cat >"$dir/clock_shift.go" <<'GO'
package time

import "syscall"

// testClockShift moves the wall clock forward for tests run by
// scripts/test-future.sh. This file exists only in that overlay.
var testClockShift = testClockShiftFromEnv()

func testClockShiftFromEnv() int64 {
	// A process of this build without the variable (a test that starts
	// itself again with a cleared environment) would run on another clock
	// than its parent: stop it and say why.
	v, ok := syscall.Getenv("STEPGATE_TEST_CLOCK_SHIFT")
	if !ok {
		panic("STEPGATE_TEST_CLOCK_SHIFT is unset in a program built by scripts/test-future.sh; pass it on to child processes")
	}
	d, err := ParseDuration(v)
	if err != nil {
		panic("STEPGATE_TEST_CLOCK_SHIFT: " + err.Error() + " (want a Go duration such as 8760h)")
	}
	return int64(d / Second)
}
GO

cat >"$dir/overlay.json" <<JSON
{"Replace": {
  "$src": "$dir/time.go",
  "$goroot/src/time/zz_stepgate_clock_shift.go": "$dir/clock_shift.go"
}}
JSON

# Prove the overlay took: a program built with it must see time.Now ahead
# of the kernel's clock by the shift. Otherwise a green run would mean
# nothing.
mkdir "$dir/probe"
cat >"$dir/probe/main.go" <<'GO'
package main

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

func main() {
	want, err := time.ParseDuration(os.Getenv("STEPGATE_TEST_CLOCK_SHIFT"))
	if err != nil {
		panic(err)
	}
	var kernel syscall.Timeval
	if err := syscall.Gettimeofday(&kernel); err != nil {
		panic(err)
	}
	got := time.Since(time.Unix(kernel.Unix())).Round(time.Second)
	if got < want-time.Minute || got > want+time.Minute {
		fmt.Printf("time.Now is %s ahead of the kernel's clock, want %s\n", got, want)
		os.Exit(1)
	}
	fmt.Println(time.Now().UTC().Format(time.DateOnly))
}
GO
export STEPGATE_TEST_CLOCK_SHIFT=$shift_by
echo "module probe" >"$dir/probe/go.mod"
if ! day=$(cd "$dir/probe" && GOFLAGS= "$go" run -overlay "$dir/overlay.json" .); then
	echo "test-future: the clock overlay did not take${day:+: $day}" >&2
	exit 1
fi
echo "test-future: time.Now moved forward by $shift_by, to $day" >&2
"$go" test -overlay "$dir/overlay.json" -count=1 -timeout 30m "$@"
