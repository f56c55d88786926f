package app

import (
	"fmt"
	"log/slog"

	"github.com/stepgate/stepgate/internal/authn/password"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/geoip"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/metrics"
	"github.com/stepgate/stepgate/internal/revoke"
	"github.com/stepgate/stepgate/internal/risk"
	"github.com/stepgate/stepgate/internal/riskservice"
)

// NewRisk builds the risk service for cfg, for the server and the command
// line; geo (no GeoIP database) and m (no metrics) may be nil.
func NewRisk(cfg config.Config, st riskservice.Store, geo *geoip.DB, clientIP httpx.ClientIP, revoker *revoke.Revoker, m *metrics.Metrics, log *slog.Logger) (*riskservice.Service, error) {
	o, err := riskOptions(cfg)
	if err != nil {
		return nil, err
	}
	o.Store, o.ClientIP, o.Revoker, o.Metrics, o.Log = st, clientIP.Of, revoker, m, log
	if geo != nil {
		// A nil *geoip.DB in the interface would not read as "none".
		o.GeoIP = geo
	}
	return riskservice.New(o)
}

// riskOptions are the service's settings from cfg: the detectors'
// thresholds, the breached password list and the IP list files.
func riskOptions(cfg config.Config) (riskservice.Options, error) {
	o := riskservice.Options{
		Detectors: risk.Config{
			MaxSpeedKmh: float64(cfg.Risk.MaxSpeedKmh), LearningSignIns: cfg.Risk.LearningSignIns,
			SprayThreshold: cfg.Risk.SprayThreshold, BruteForceThreshold: cfg.Risk.BruteForceThreshold,
		},
		LowAgeOut: cfg.Risk.UserRiskLowAgeOut.D(),
	}
	if cfg.Password.BreachedList != "" {
		list, err := password.LoadBreached(cfg.Password.BreachedList)
		if err != nil {
			return o, fmt.Errorf("password.breached_list: %w", err)
		}
		o.Detectors.Breached = list
	}
	for i, l := range cfg.Risk.IPLists {
		level, err := risk.ParseLevel(l.Level)
		if err != nil {
			return o, fmt.Errorf("risk.ip_lists[%d].level: %w", i, err)
		}
		o.IPLists = append(o.IPLists, riskservice.IPList{Name: l.Name, File: l.File, Level: level, Key: fmt.Sprintf("risk.ip_lists[%d]", i)})
	}
	return o, nil
}
