package riskservice

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/risk"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// Bounds of a reported detection. A report is an administrator's
// statement, but it lands in a user record every decision reads: the
// bounds keep one report, or a reporting loop, from making that record
// large.
const (
	// MaxDetectionLifetime is the longest a detection may count.
	MaxDetectionLifetime = 90 * 24 * time.Hour
	maxReasonLen         = 512
	maxEvidence          = 16
	maxEvidenceKey       = 64
	maxEvidenceValue     = 512
	maxIdempotencyKey    = 200
	maxIDLen             = 256
	// Idempotency keys live as long as their detection; these bound
	// them all together.
	maxKeys     = 100000
	maxKeyBytes = 64 << 20
)

// reasonReported is the metrics' reason for every reported detection.
const reasonReported = "reported"

// reservedEvidence are the evidence keys the sign-in log adds to a
// reported detection; a caller may not send them, so the log's "source"
// is always the authenticated caller, never a name the body claims.
var reservedEvidence = []string{"source", "id", "applies_to", "expires_at", "session_id", "token_id", "revoke"}

var (
	detectionKeys = kvspace.JSON[keyRecord](kvspace.RiskDetectionKey)
	typePattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	// keyPattern: printable ASCII without spaces or "/", which divides
	// the segments of the key the idempotency key is kept under.
	keyPattern   = regexp.MustCompile(`^[\x21-\x2e\x30-\x7e]{1,200}$`)
	builtinTypes = []string{risk.TypeTravel, risk.TypeUnfamiliar, risk.TypeIPList, risk.TypeSpray, risk.TypeBruteForce,
		risk.TypeLeaked, risk.TypeAdmin, "user-reported"}
)

// Errors of Report; each wraps its errkind, so the API answers 400, 404,
// 409 or 429 without looking at the text.
var (
	errInvalidReport = errkind.New(errkind.Invalid, "invalid detection")
	errUnknown       = errkind.New(errkind.NotFound, "not found")
	errKeyReused     = errkind.New(errkind.Conflict, "idempotency key reused")
	errTooManyKeys   = errkind.New(errkind.Throttled, "too many idempotency keys")
)

func invalidReport(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errInvalidReport, fmt.Sprintf(format, args...))
}

// Report is a detection another system reports: the request body of
// POST /api/v1/risk/detections, and who sent it.
type Report struct {
	// User is a username or a user id.
	User      string            `json:"user"`
	SessionID string            `json:"session_id,omitempty"`
	TokenID   string            `json:"token_id,omitempty"`
	Type      string            `json:"type"`
	Level     string            `json:"level"`
	AppliesTo string            `json:"applies_to,omitempty"`
	Reason    string            `json:"reason"`
	Evidence  map[string]string `json:"evidence,omitempty"`
	Revoke    bool              `json:"revoke,omitempty"`
	ExpiresAt time.Time         `json:"expires_at"`
}

// Reported is the answer to a Report: the detection as stored, and what
// it did.
type Reported struct {
	risk.OutsideDetection
	UserID   string `json:"user_id"`
	Username string `json:"user"`
	// UserRisk is the user's risk right after the report.
	UserRisk string `json:"user_risk"`
	// SessionsRevoked says the user's sessions and tokens were ended.
	SessionsRevoked bool `json:"sessions_revoked"`
	// Replayed is true when the answer is the one given to an earlier
	// request with the same idempotency key.
	Replayed bool `json:"-"`
}

// keyRecord is an idempotency key's entry: the request it was first
// used with, and the answer given.
type keyRecord struct {
	RequestSHA256 string          `json:"request_sha256"`
	Answer        json.RawMessage `json:"answer"`
}

// SignInLog writes a sign-in log entry for a reported detection.
type SignInLog func(ctx context.Context, username string, d Reported) error

// SetSignInLog makes reported detections show in the sign-in log; the
// server sets it while it is built.
func (k *Service) SetSignInLog(fn SignInLog) { k.signInLog = fn }

// Subscribe calls fn with the user's id after every detection reported
// through k, so caches of decisions in this process (the gateway's)
// drop what they hold at once: a sign-in detection ends no session, yet
// must change the very next decision. The server subscribes while it is
// built.
func (k *Service) Subscribe(fn func(userID string)) { k.subscribers = append(k.subscribers, fn) }

// Report stores a detection another system reported (source names it:
// "api-token", "client:siem") under an idempotency key, raises the
// user's or the sign-in's risk, and ends the user's sessions when it asks
// to or makes the user's risk high. Bad input is refused before anything
// is stored.
//
// A key answers the same request with the first answer; another request
// under it is refused (errKeyReused). Applying a detection is idempotent
// by its id, derived from the source and the key, and the key is
// recorded after it: two racing requests store one detection, and a
// retry after a failure between the two writes completes the first,
// revocation included.
func (k *Service) Report(ctx context.Context, source, key string, in Report) (Reported, error) {
	now := k.now().UTC()
	d, u, err := k.checkReport(ctx, source, key, in, now)
	if err != nil {
		return Reported{}, err
	}
	sum := requestSum(in)
	rec := detectionKeys.At(source, key)
	if prev, err := rec.Get(ctx, k.kv); err == nil {
		return replay(prev, sum)
	} else if !errors.Is(err, store.ErrNotFound) {
		return Reported{}, err
	}
	out, added, err := k.apply(ctx, u, d)
	if err != nil {
		return Reported{}, err
	}
	if !added && !sameDetection(out.OutsideDetection, d) {
		// A request racing this one under the key, with another body,
		// stored its detection first.
		return Reported{}, errReused()
	}
	answer, err := json.Marshal(out)
	if err != nil {
		return Reported{}, err
	}
	err = rec.CreateWithin(ctx, k.kv, keyRecord{RequestSHA256: sum, Answer: answer}, d.ExpiresAt, k.keyQuota)
	switch {
	case errors.Is(err, store.ErrConflict):
		prev, gerr := rec.Get(ctx, k.kv)
		if gerr != nil {
			return Reported{}, gerr
		}
		if prev.RequestSHA256 != sum && added {
			// The key went to a racing request with another body
			// (perhaps about another user): this one's detection goes.
			k.withdraw(ctx, u.ID, d.ID)
		}
		return replay(prev, sum)
	case err != nil:
		if added {
			// Nothing partial: the detection goes with its key.
			k.withdraw(ctx, u.ID, d.ID)
		}
		if errors.Is(err, store.ErrQuota) {
			return Reported{}, fmt.Errorf("%w: at most %d idempotency keys (%d MiB) are kept, each until its detection expires; retry later, or give detections shorter expiries",
				errTooManyKeys, k.keyQuota.MaxCount, k.keyQuota.MaxBytes>>20)
		}
		return Reported{}, err
	}
	// Whoever records the key sets the detection off, once: the request
	// that stored the detection or, after a racing or failed one, the
	// one that completed it.
	k.after(ctx, u, out)
	return out, nil
}

// replay answers a repeated key: the first answer for the same request,
// a conflict for another.
func replay(prev keyRecord, sum string) (Reported, error) {
	if prev.RequestSHA256 != sum {
		return Reported{}, errReused()
	}
	var out Reported
	if err := json.Unmarshal(prev.Answer, &out); err != nil {
		return Reported{}, fmt.Errorf("read the answer of an idempotency key: %w", err)
	}
	out.Replayed = true
	return out, nil
}

func errReused() error {
	return fmt.Errorf("%w: this Idempotency-Key was used with another request; send a new key for a new detection, or the same body to repeat the first", errKeyReused)
}

// sameDetection reports whether a and b say the same: what a retry of
// one request stores, whenever it is received.
func sameDetection(a, b risk.OutsideDetection) bool {
	return a.Type == b.Type && a.Level == b.Level && a.Reason == b.Reason && maps.Equal(a.Evidence, b.Evidence) &&
		a.AppliesTo == b.AppliesTo && a.SessionID == b.SessionID && a.TokenID == b.TokenID && a.Revoke == b.Revoke &&
		a.ExpiresAt.Equal(b.ExpiresAt)
}

// apply adds d to the user's risk in one compare-and-swap. added is
// false when a detection with d's id is there already (a racing or
// retried request), whose answer is then the stored one.
func (k *Service) apply(ctx context.Context, u store.User, d risk.OutsideDetection) (Reported, bool, error) {
	out := Reported{OutsideDetection: d, UserID: u.ID, Username: u.Username}
	added := false
	err := k.updateUserRisk(ctx, u.ID, func(st *risk.UserRiskState) {
		added = st.AddOutside(d, d.ReceivedAt)
		if i := slices.IndexFunc(st.Outside, func(o risk.OutsideDetection) bool { return o.ID == d.ID }); i >= 0 {
			out.OutsideDetection = st.Outside[i]
		}
		out.UserRisk = st.Effective(d.ReceivedAt, k.lowAgeOut).String()
	})
	if err != nil {
		return Reported{}, false, fmt.Errorf("store the detection: %w", err)
	}
	out.SessionsRevoked = out.Revoke || (out.AppliesTo == risk.AppliesToUser && out.Level == risk.High)
	return out, added, nil
}

// withdraw removes a detection whose key could not be recorded.
func (k *Service) withdraw(ctx context.Context, userID, id string) {
	err := k.updateUserRisk(ctx, userID, func(st *risk.UserRiskState) {
		st.Outside = slices.DeleteFunc(st.Outside, func(o risk.OutsideDetection) bool { return o.ID == id })
	})
	if err != nil {
		k.log.ErrorContext(ctx, "withdraw a detection whose idempotency key was not stored", "user_id", userID, "id", id, "err", err)
	}
}

// after does what a new detection sets off: the metrics, the log, the
// sign-in log and, when asked or when the user's risk is high, the end
// of the user's sessions and tokens.
func (k *Service) after(ctx context.Context, u store.User, out Reported) {
	if k.metrics != nil {
		// One label for every reported detection: the reason and type are
		// the caller's free text, and as labels they would let a caller
		// grow the metrics without bound.
		k.metrics.Detection(reasonReported, out.Level.String())
	}
	k.log.WarnContext(ctx, "risk detection reported", "user_id", u.ID, "source", out.Source, "type", out.Type,
		"level", out.Level.String(), "applies_to", out.AppliesTo, "reason", out.Reason, "revoke", out.Revoke)
	if out.SessionsRevoked && k.revoker != nil {
		reason := "risk-high"
		if out.Revoke {
			reason = "risk-detection"
		}
		if err := k.revoker.RevokeUser(ctx, u.ID, reason); err != nil {
			k.log.ErrorContext(ctx, "revoke after a reported detection", "user_id", u.ID, "err", err)
		}
	}
	for _, fn := range k.subscribers {
		fn(u.ID)
	}
	if k.signInLog != nil {
		if err := k.signInLog(ctx, u.Username, out); err != nil {
			k.log.ErrorContext(ctx, "write a reported detection to the sign-in log", "user_id", u.ID, "err", err)
		}
	}
}

// requestSum is the SHA-256 of the report as decoded, so a retry that
// spells the same request with other whitespace or key order is the
// same request.
func requestSum(in Report) string {
	in.ExpiresAt = in.ExpiresAt.UTC()
	b, _ := json.Marshal(in) //nolint:errchkjson // plain strings, a map of strings and a time
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// detectionID names the detection of key from source.
func detectionID(source, key string) string {
	sum := sha256.Sum256([]byte(source + "\x00" + key))
	return hex.EncodeToString(sum[:8])
}

// checkReport validates a report and resolves its user and session;
// every problem is reported at once, and nothing is stored.
func (k *Service) checkReport(ctx context.Context, source, key string, in Report, now time.Time) (risk.OutsideDetection, store.User, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if !keyPattern.MatchString(key) {
		bad(`the Idempotency-Key header must be 1 to %d printable ASCII characters without spaces or "/" (a UUID or the event id of the reporting system)`, maxIdempotencyKey)
	}
	if !typePattern.MatchString(in.Type) {
		bad(`type must be 1 to 64 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit, like "edr-malware"`)
	} else if slices.Contains(builtinTypes, in.Type) {
		bad("type %q is the type of a built-in detection; name the reporting system's own, like \"siem-%s\"", in.Type, in.Type)
	}
	level, err := risk.ParseLevel(in.Level)
	if err != nil || level == risk.None {
		bad(`level must be "low", "medium" or "high"`)
	}
	appliesTo := in.AppliesTo
	if appliesTo == "" {
		appliesTo = risk.AppliesToUser
	}
	checkTarget(appliesTo, in, bad)
	checkText("reason", in.Reason, maxReasonLen, true, bad)
	checkEvidence(in.Evidence, bad)
	switch {
	case in.ExpiresAt.IsZero():
		bad("expires_at is required: the time (RFC 3339) the detection stops counting, at most 90 days ahead")
	case !in.ExpiresAt.After(now):
		bad("expires_at %s is not in the future; give a time after %s", in.ExpiresAt.UTC().Format(time.RFC3339), now.Format(time.RFC3339))
	case in.ExpiresAt.Sub(now) > MaxDetectionLifetime:
		bad("expires_at is more than 90 days ahead; give a time before %s", now.Add(MaxDetectionLifetime).Format(time.RFC3339))
	}
	if len(problems) > 0 {
		return risk.OutsideDetection{}, store.User{}, invalidReport("%s", strings.Join(problems, "; "))
	}
	u, err := k.findUser(ctx, in.User)
	if err != nil {
		return risk.OutsideDetection{}, store.User{}, err
	}
	if err := k.checkSession(ctx, u, in.SessionID, now); err != nil {
		return risk.OutsideDetection{}, store.User{}, err
	}
	d := risk.OutsideDetection{
		ID:        detectionID(source, key),
		Detection: risk.Detection{Type: in.Type, Level: level, Reason: in.Reason, Evidence: maps.Clone(in.Evidence)},
		AppliesTo: appliesTo, SessionID: in.SessionID, TokenID: in.TokenID, Source: source, Revoke: in.Revoke,
		ReceivedAt: now, ExpiresAt: in.ExpiresAt.UTC(),
	}
	return d, u, nil
}

// checkTarget checks what a detection applies to: the user, or one
// session or token of theirs.
func checkTarget(appliesTo string, in Report, bad func(string, ...any)) {
	switch appliesTo {
	case risk.AppliesToUser:
		if in.SessionID != "" || in.TokenID != "" {
			bad(`session_id and token_id name what a sign-in detection applies to; send "applies_to": "sign-in" with them, or leave them out`)
		}
	case risk.AppliesToSignIn:
		if in.SessionID == "" && in.TokenID == "" {
			bad("a sign-in detection needs session_id (a session's id, as GET /api/v1/users/{name} lists it) or token_id (an access token's jti)")
		}
	default:
		bad(`applies_to must be "user" or "sign-in"`)
	}
	checkText("session_id", in.SessionID, maxIDLen, false, bad)
	checkText("token_id", in.TokenID, maxIDLen, false, bad)
}

// checkText refuses text that is too long, is not UTF-8, or has control
// or format characters: it is shown as it is in the console, the sign-in
// log and a terminal, where an escape sequence or a right-to-left
// override could make it say something else than it holds.
func checkText(name, s string, limit int, required bool, bad func(string, ...any)) {
	switch {
	case s == "" && required:
		bad("%s is required", name)
	case len(s) > limit:
		bad("%s is longer than %d bytes", name, limit)
	case !utf8.ValidString(s) || strings.ContainsFunc(s, hidden):
		bad("%s must be UTF-8 text without control or format characters", name)
	}
}

// hidden reports whether r changes how text around it shows rather than
// showing itself.
func hidden(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }

func checkEvidence(ev map[string]string, bad func(string, ...any)) {
	if len(ev) > maxEvidence {
		bad("evidence has %d entries; send at most %d", len(ev), maxEvidence)
		return
	}
	for _, key := range slices.Sorted(maps.Keys(ev)) {
		if !typePattern.MatchString(key) {
			bad("evidence key %q must be 1 to %d lower-case letters, digits, \".\", \"_\" or \"-\"", key, maxEvidenceKey)
			continue
		}
		if slices.Contains(reservedEvidence, key) {
			bad("evidence key %q is Stepgate's own (the sign-in log adds it); rename it, like \"reported_%s\"", key, key)
			continue
		}
		checkText("evidence."+key, ev[key], maxEvidenceValue, false, bad)
	}
}

// findUser resolves a username, then a user id.
func (k *Service) findUser(ctx context.Context, name string) (store.User, error) {
	if name == "" {
		return store.User{}, invalidReport("user is required: a username or user id")
	}
	if len(name) > maxIDLen || !utf8.ValidString(name) {
		return store.User{}, invalidReport("user must be a username or user id of at most %d bytes", maxIDLen)
	}
	u, err := k.kv.GetUserByName(ctx, strings.ToLower(name))
	if errors.Is(err, store.ErrNotFound) {
		u, err = k.kv.GetUser(ctx, name)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, fmt.Errorf("%w: no user with the username or id %q", errUnknown, name)
	}
	return u, err
}

// checkSession refuses a session that is not a live one of u: a report
// must not raise the risk of another user's session.
func (k *Service) checkSession(ctx context.Context, u store.User, id string, now time.Time) error {
	if id == "" {
		return nil
	}
	s, err := k.kv.GetSession(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (s.UserID != u.ID || !now.Before(s.ExpiresAt))) {
		return fmt.Errorf("%w: %s has no live session %q; GET /api/v1/users/%s lists their sessions", errUnknown, u.Username, id, u.Username)
	}
	return err
}

// RiskDetail is a user's risk as administrators see it: the level, the
// built-in detections behind it and the reported ones still counting.
type RiskDetail struct {
	Level      string                  `json:"level"`
	Resolution string                  `json:"resolution,omitempty"`
	Detections []risk.Detection        `json:"detections"`
	Reported   []risk.OutsideDetection `json:"reported"`
}

// Detail reads a user's risk from the store (never the cache).
func (k *Service) Detail(ctx context.Context, userID string) (RiskDetail, error) {
	st, err := load(ctx, k.kv, userRisks.At(userID))
	if err != nil {
		return RiskDetail{}, err
	}
	now := k.now()
	out := RiskDetail{Level: st.Effective(now, k.lowAgeOut).String(), Resolution: st.Resolution,
		Detections: append([]risk.Detection{}, st.Detections...), Reported: []risk.OutsideDetection{}}
	for _, o := range st.Outside {
		if o.Live(now) {
			out.Reported = append(out.Reported, o)
		}
	}
	return out, nil
}

// SessionRisks are the live reported detections of a session or token
// of userID, for decisions about it.
func (k *Service) SessionRisks(ctx context.Context, userID, sessionID, tokenID string) []risk.SessionRisk {
	st, err := k.cachedState(ctx, userID)
	if err != nil {
		k.log.WarnContext(ctx, "load user risk", "err", err)
		return nil
	}
	return st.SignInRisks(sessionID, tokenID, k.now())
}
