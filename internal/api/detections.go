package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/riskservice"
)

// maxDetectionBody bounds a reported detection: a few fields and at most
// sixteen short pieces of evidence fit in far less.
const maxDetectionBody = 16 << 10

// Detections stores risk detections other systems report
// (riskservice.Service).
type Detections interface {
	Report(ctx context.Context, source, key string, in riskservice.Report) (riskservice.Reported, error)
}

// reportDetection is POST /api/v1/risk/detections: a SIEM, an EDR or a
// fraud engine tells Stepgate what it saw. The route is a change, so
// only the API token or an admin client may call it (a request from this
// machine without one may not), and the detection names it as its
// source.
func (a *API) reportDetection(w http.ResponseWriter, r *http.Request) error {
	if a.deps.Detections == nil {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Description: "risk detections are not enabled on this server"}
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_request",
			Description: "send an Idempotency-Key header (a UUID, or the reporting system's event id), so that a retried request is stored once"}
	}
	var in riskservice.Report
	if err := decodeJSONWithin(w, r, &in, maxDetectionBody); err != nil {
		var e *Error
		var notTime *time.ParseError
		if errors.As(err, &e) && errors.As(err, &notTime) { // the one time field
			e.Description = "expires_at must be an RFC 3339 time, like 2026-01-02T15:04:05Z, at most 90 days ahead"
		}
		return err
	}
	out, err := a.deps.Detections.Report(r.Context(), string(actorOf(r)), key, in)
	if err != nil {
		return detectionErr(err)
	}
	if out.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// detectionErr maps a refused report to its answer; a fault stays a
// fault (500, with an incident number).
func detectionErr(err error) error {
	status := httpx.StatusOf(err)
	if status >= 500 {
		return err
	}
	codes := map[errkind.Kind]string{errkind.NotFound: "not_found", errkind.Conflict: "conflict", errkind.Throttled: "temporarily_unavailable"}
	code, ok := codes[errkind.Of(err)]
	if !ok {
		code = "invalid_request"
	}
	desc := err.Error()
	if _, rest, found := strings.Cut(desc, ": "); found {
		desc = rest // the kind's own word, "invalid detection", adds nothing
	}
	return &Error{Status: status, Code: code, Description: desc, Debug: err}
}
