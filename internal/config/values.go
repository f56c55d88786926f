package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// String formats the duration the way time.Duration does ("8h0m0s").
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML reads "90s", "15m", "8h". It lets a plain yaml.Unmarshal
// of a Config work too; Resolve's own walker uses the same parser.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("must be a duration like 30s, 15m or 8h")
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration as a string so the output reads back.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// parseDuration is time.ParseDuration with a message that shows the fix.
func parseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		msg := fmt.Sprintf("%s is not a duration; write it like 30s, 15m or 8h", quote(s))
		if strings.HasSuffix(s, "d") {
			// time.ParseDuration has no days; people try them anyway.
			msg += " (there is no d unit: write 168h for 7 days)"
		}
		return 0, errors.New(msg)
	}
	return Duration(d), nil
}

// setText stores an environment variable's text into v.
func setText(v reflect.Value, s string) error {
	switch {
	case v.Type() == durationType:
		d, err := parseDuration(s)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(d))
	case v.Type() == stringsType:
		v.Set(reflect.ValueOf(splitList(s)))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		v.SetBool(b)
	case v.CanInt() || v.CanUint():
		i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return notWholeNumber(s)
		}
		return setInt(v, i)
	default:
		return fmt.Errorf("cannot be set (unsupported type %s)", v.Type())
	}
	return nil
}

// splitList reads a comma-separated list; blanks are dropped so
// "a, b," means [a b].
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// setInt stores i into an integer field of any size, refusing values that
// would wrap around (a negative memory_kib must not become 4 GiB).
func setInt(v reflect.Value, i int64) error {
	bits := v.Type().Bits()
	if v.CanUint() {
		if i < 0 || v.OverflowUint(uint64(i)) {
			return fmt.Errorf("%d is out of range; use a whole number from 0 to %d", i, uint64(math.MaxUint64)>>(64-bits))
		}
		v.SetUint(uint64(i))
		return nil
	}
	if v.OverflowInt(i) {
		return fmt.Errorf("%d is out of range; use a whole number from %d to %d", i, int64(math.MinInt64)>>(64-bits), int64(math.MaxInt64)>>(64-bits))
	}
	v.SetInt(i)
	return nil
}

func notWholeNumber(s string) error {
	return fmt.Errorf("%s is not a whole number; write digits only, like 20", quote(s))
}
