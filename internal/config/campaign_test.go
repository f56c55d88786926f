package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRegistrationCampaign: the campaign's keys decode from a file and
// the environment, an unknown key under it is refused by name, and a
// snooze count out of range is a problem at its key path.
func TestRegistrationCampaign(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	load := func(t *testing.T, yaml string, env ...string) (Config, error) {
		t.Helper()
		path := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, _, err := Resolve(path, Flags{DataDir: dir}, env)
		return cfg, err
	}
	t.Run("ok/defaults", func(t *testing.T) {
		cfg, err := load(t, "{}\n")
		if err != nil || cfg.Registration.Campaign.Enabled || cfg.Registration.Campaign.Snoozes != 3 {
			t.Fatalf("defaults: %+v (%v), want off with 3 snoozes", cfg.Registration.Campaign, err)
		}
	})
	t.Run("ok/file-and-env", func(t *testing.T) {
		cfg, err := load(t, "registration:\n  campaign:\n    enabled: true\n", "STEPGATE_REGISTRATION_CAMPAIGN_SNOOZES=5")
		if err != nil || !cfg.Registration.Campaign.Enabled || cfg.Registration.Campaign.Snoozes != 5 {
			t.Fatalf("campaign: %+v (%v), want on with 5 snoozes", cfg.Registration.Campaign, err)
		}
	})
	t.Run("fail/unknown-key", func(t *testing.T) {
		_, err := load(t, "registration:\n  campaign:\n    enabeld: true\n")
		if err == nil || !strings.Contains(err.Error(), "registration.campaign.enabeld") {
			t.Fatalf("a misspelt key: %v, want it named", err)
		}
	})
	for _, n := range []int{0, -1, 101} {
		c := Default()
		c.Registration.Campaign.Snoozes = n
		ps := c.Validate()
		if len(ps) != 1 || ps[0].Path != "registration.campaign.snoozes" || !strings.Contains(ps[0].Message, "from 1 to 100") {
			t.Errorf("fail/snoozes-%d: %v", n, ps)
		}
	}
}
