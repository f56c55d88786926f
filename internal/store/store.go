// Package store defines Stepgate's persistent records and the storage
// interfaces every backend implements.
//
// Consumers depend on the narrow interface they need (Users, Sessions, ...),
// never on a concrete backend. A backend is correct when it passes the
// conformance suite in package storetest (RunTests, and RunNamespaceTests
// for the shapes of the key/value space).
//
// The key/value space (KV) is divided into the namespaces catalogued in
// package kvspace; features reach it through their typed accessors, never
// with keys of their own.
package store

import (
	"context"
	"fmt"
	"time"

	"github.com/stepgate/stepgate/internal/errkind"
)

// Sentinel errors. Backends wrap them so callers can use errors.Is.
var (
	// ErrNotFound means the record does not exist.
	ErrNotFound = errkind.New(errkind.NotFound, "not found")
	// ErrConflict means the record already exists (a unique key is taken) or
	// is still referenced and cannot be removed.
	ErrConflict = errkind.New(errkind.Conflict, "conflict")
	// ErrQuota means an entry was refused because storing it would take
	// a quota past its bound (a *QuotaError says which).
	ErrQuota = errkind.New(errkind.Throttled, "quota exceeded")
)

// Quota bounds the live entries of the key/value space whose keys start
// with Prefix: how many, and the total size of their values in bytes,
// counting the entry being stored. A zero bound admits nothing.
type Quota struct {
	Prefix   string
	MaxCount int
	MaxBytes int64
}

// QuotaError is the quota that refused an entry.
type QuotaError struct {
	Quota Quota
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("quota of %q exceeded (at most %d entries, %d bytes)", e.Quota.Prefix, e.Quota.MaxCount, e.Quota.MaxBytes)
}

func (e *QuotaError) Unwrap() error { return ErrQuota }

// User is a person who can sign in.
type User struct {
	ID          string // stable opaque id; never reused
	Username    string // unique, stored lower-case
	Email       string
	DisplayName string
	Groups      []string // names of groups the user is a direct member of
	Roles       []string // names of roles the user holds
	// Grants are the roles the user holds through active assignments
	// and elevations; GetUser and GetUserByName fill them (they are not
	// stored with the user). Use RolesAt for the roles that count.
	Grants       []Grant
	Disabled     bool
	PasswordHash string // PHC string (argon2id); empty means no password set
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Version      int64 // incremented on every update
}

// Group is a named set of users. Groups may be members of other groups
// (Parents), which policies expand transitively.
type Group struct {
	Name        string // unique, lower-case
	DisplayName string
	Description string
	Parents     []string // groups this group is a member of
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Version     int64
}

// Role is a named privilege that policies can target.
type Role struct {
	Name        string // unique, lower-case
	Description string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Version     int64
}

// Credential is one registered authentication method of a user: a TOTP
// seed, a passkey, a set of recovery codes, a push device. Data is opaque
// to the store; the owning method package encodes (and, for secrets,
// encrypts) it.
type Credential struct {
	ID         string
	UserID     string
	Type       string // method name, e.g. "totp", "webauthn"
	Name       string // user-visible label
	Data       []byte
	CreatedAt  time.Time
	UpdatedAt  time.Time
	LastUsedAt time.Time // zero when never used
	Version    int64
}

// Session is a browser SSO session.
type Session struct {
	// ID is the SHA-256 of the cookie value, hex encoded. The store never
	// holds the bearer value itself, so a read of the database cannot be
	// replayed as a cookie.
	ID         string
	UserID     string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time // absolute end of life
	Events     []AuthEvent
	IP         string
	UserAgent  string
	Version    int64
}

// AuthEvent is one completed proof of identity within a session. Freshness
// and strength are always computed from events, never stored.
type AuthEvent struct {
	Method            string    `json:"method"`
	Time              time.Time `json:"time"`
	AMR               []string  `json:"amr"`
	PhishingResistant bool      `json:"phr,omitempty"`
	CredentialID      string    `json:"cred,omitempty"`
	// AAGUID is the authenticator model of a passkey proof.
	AAGUID string `json:"aaguid,omitempty"`
	// Risk is, for the sign-in that started a session, the sign-in risk
	// assessed then (low, medium, high; empty for none), and RiskReasons
	// the detections behind it.
	Risk        string   `json:"risk,omitempty"`
	RiskReasons []string `json:"risk_reasons,omitempty"`
}

// KVEntry is one value of the key/value space (see package kvspace for
// its namespaces).
type KVEntry struct {
	Key       string
	Value     []byte
	UpdatedAt time.Time
	// ExpiresAt, when set, is when the entry stops existing: reads treat
	// it as absent from then on, and DeleteExpiredKV reclaims the space.
	// Single-use grants (authorization codes, refresh tokens) rely on it.
	ExpiresAt time.Time
	Version   int64
}

// Users stores user accounts. Usernames are unique.
type Users interface {
	CreateUser(ctx context.Context, u User) (User, error)
	GetUser(ctx context.Context, id string) (User, error)
	GetUserByName(ctx context.Context, username string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// FindUsers returns one page of users ordered by username: those
	// whose username, email or display name contains q.Match (ignoring
	// the case of ASCII letters everywhere, of all letters on
	// PostgreSQL), after the username q.After.
	FindUsers(ctx context.Context, q UserQuery) ([]User, error)
	// UpdateUser applies fn to the current record and stores the result
	// atomically; concurrent updates never lose each other's changes.
	UpdateUser(ctx context.Context, id string, fn func(User) (User, error)) (User, error)
	DeleteUser(ctx context.Context, id string) error
}

// UserQuery selects a page of users for FindUsers.
type UserQuery struct {
	Match string // a substring; empty matches everyone
	After string // the pagination cursor: the last username of the previous page
	Limit int    // at most this many; 0 means 100
}

// Groups stores groups.
type Groups interface {
	CreateGroup(ctx context.Context, g Group) (Group, error)
	GetGroup(ctx context.Context, name string) (Group, error)
	ListGroups(ctx context.Context) ([]Group, error)
	UpdateGroup(ctx context.Context, name string, fn func(Group) (Group, error)) (Group, error)
	DeleteGroup(ctx context.Context, name string) error
}

// Roles stores roles.
type Roles interface {
	CreateRole(ctx context.Context, r Role) (Role, error)
	GetRole(ctx context.Context, name string) (Role, error)
	ListRoles(ctx context.Context) ([]Role, error)
	UpdateRole(ctx context.Context, name string, fn func(Role) (Role, error)) (Role, error)
	DeleteRole(ctx context.Context, name string) error
}

// Credentials stores users' registered authentication methods.
type Credentials interface {
	CreateCredential(ctx context.Context, c Credential) (Credential, error)
	GetCredential(ctx context.Context, id string) (Credential, error)
	ListCredentials(ctx context.Context, userID string) ([]Credential, error)
	UpdateCredential(ctx context.Context, id string, fn func(Credential) (Credential, error)) (Credential, error)
	DeleteCredential(ctx context.Context, id string) error
}

// Sessions stores SSO sessions.
type Sessions interface {
	CreateSession(ctx context.Context, s Session) (Session, error)
	GetSession(ctx context.Context, id string) (Session, error)
	UpdateSession(ctx context.Context, id string, fn func(Session) (Session, error)) (Session, error)
	// ReplaceSession atomically deletes the session oldID and stores next
	// in its place. It is how a session gets a new id at step-up, so a
	// fixated id dies the moment its owner proves more.
	ReplaceSession(ctx context.Context, oldID string, next Session) (Session, error)
	DeleteSession(ctx context.Context, id string) error
	ListUserSessions(ctx context.Context, userID string) ([]Session, error)
	DeleteUserSessions(ctx context.Context, userID string) (int, error)
	// DeleteExpiredSessions removes sessions whose absolute lifetime ended
	// before t and reports how many went.
	DeleteExpiredSessions(ctx context.Context, before time.Time) (int, error)
}

// SignIn is one sign-in log row. The store indexes the filterable fields
// and keeps the whole entry, as the audit package encoded it, in Body.
type SignIn struct {
	Seq      int64 // assigned by the store, increasing in write order
	ID       string
	Time     time.Time
	UserID   string
	App      string
	Decision string
	Policies []string // policies that applied, for the policy filter
	// StatementClass is the class of the SQL statement an entry of the
	// database gateway decided; empty for every other entry.
	StatementClass string
	Body           []byte
	// Counters are the running totals the entry adds one to, as
	// tally.Outcome.Counters lists them from Body. The log's writer,
	// which has the entry decoded, fills them in (never nil, even when
	// empty); nil makes the store read them from Body.
	Counters []SignInCounter
	// Amend makes the row replace the Body of the stored row with its
	// ID, written earlier, and nothing else: the indexed fields and the
	// running totals stay as they are. It is how what happened after a
	// decision is added to its entry (a database statement's rows and
	// duration, known once it has run).
	Amend bool
}

// SignInQuery selects sign-ins, newest first. Empty fields match all.
type SignInQuery struct {
	UserID, App, Decision, Policy string
	// Database selects the SQL statements the database gateway decided
	// on this database (not the sign-ins of its OIDC client of the same
	// name); StatementClass, statements of this class.
	Database, StatementClass string
	Since, Until             time.Time // Since inclusive, Until exclusive
	// Before is the pagination cursor: only rows with Seq < Before.
	Before int64
	Limit  int
}

// SignIns stores the sign-in log.
type SignIns interface {
	// AppendSignIns writes a batch atomically: all rows or none. A row
	// whose ID is already stored is skipped, so a retried batch writes
	// each entry once. Amending rows (SignIn.Amend) are applied after
	// the batch's new rows; one whose entry is gone changes nothing.
	AppendSignIns(ctx context.Context, rows []SignIn) error
	ListSignIns(ctx context.Context, q SignInQuery) ([]SignIn, error)
	// DeleteSignInsBefore removes rows older than t (retention), and
	// takes them off the running totals in the same transaction.
	DeleteSignInsBefore(ctx context.Context, t time.Time) (int, error)
	// SignInTotals sums the running totals of the hours q selects, per
	// bucket, counter and policy. AppendSignIns and DeleteSignInsBefore
	// keep them in the transaction that changes the log, so they always
	// agree with it.
	SignInTotals(ctx context.Context, q SignInTotalsQuery) ([]SignInTotal, error)
	// RebuildSignInTotals counts the totals again from the whole log
	// when they were never counted (a database from before they were
	// kept) or counted by another version of the counting
	// (SignInTotalsVersion). Writers wait while it runs; it reads the log
	// a page at a time, so its memory does not grow with the log.
	RebuildSignInTotals(ctx context.Context) (SignInRebuild, error)
}

// SignInTotalsHour is the width of one bucket of the running totals.
const SignInTotalsHour = time.Hour

// SignInTotalsVersion names the way entries are counted (audit.Tally):
// a database whose totals another version counted is counted again.
const SignInTotalsVersion = 1

// SignInCounter is one running total an entry adds one to: the entry's
// outcome ("allow", "step-up-success"), or what a policy did to it
// ("challenged" by Policy).
type SignInCounter struct {
	Name   string
	Policy string
}

// SignInTotal is how many entries of one bucket of hours added to one
// counter.
type SignInTotal struct {
	Hour time.Time // the bucket's start, UTC
	SignInCounter
	N int64
}

// SignInTotalsQuery selects whole hours of totals: Since is rounded
// down and Until up to SignInTotalsHour. App, when set, counts that
// app's entries only. Bucket, a whole number of hours (default one),
// sums the totals of each Bucket from Since: the store adds them up,
// so a month of hourly totals comes back as a few hundred.
type SignInTotalsQuery struct {
	Since, Until time.Time
	App          string
	Bucket       time.Duration
}

// SignInRebuild says what RebuildSignInTotals did.
type SignInRebuild struct {
	Rebuilt bool // false: the totals were already counted
	Entries int  // entries counted
}

// KV is a key/value space with expiry, compare-and-swap and quotas, for
// the records kvspace catalogues: signing keys, grants, hand-off tickets,
// single-use spends, throttles, risk histories and the like.
type KV interface {
	GetKV(ctx context.Context, key string) (KVEntry, error)
	// CreateKV stores value under key unless a live entry holds the key
	// (ErrConflict). Nodes racing to create the same secret all end up with
	// the winner's. A zero expiresAt means the entry never expires.
	CreateKV(ctx context.Context, key string, value []byte, expiresAt time.Time) (KVEntry, error)
	// UpdateKV is compare-and-swap on a live entry; its expiry is kept.
	UpdateKV(ctx context.Context, key string, fn func([]byte) ([]byte, error)) (KVEntry, error)
	// RenewKV is UpdateKV that also sets the entry's expiry, in the same
	// compare-and-swap: fn returns the new value and when it expires (zero:
	// never). A record that must outlive its latest change (a lock, a
	// revocation) renews itself with that change, so it never lapses at a
	// time fixed by its first write.
	RenewKV(ctx context.Context, key string, fn func([]byte) ([]byte, time.Time, error)) (KVEntry, error)
	DeleteKV(ctx context.Context, key string) error
	ListKV(ctx context.Context, prefix string) ([]KVEntry, error)
	// DeleteExpiredKV removes entries that expired before t, and gives
	// the space they held back to the file system where the backend
	// does not do so itself.
	DeleteExpiredKV(ctx context.Context, before time.Time) (int, error)
	// CreateKVWithin is CreateKV within quotas: it refuses with a
	// *QuotaError when storing value would take past its bound a quota
	// whose prefix the key has (quotas of other prefixes do not apply).
	// Counting and storing are one step on every node sharing the store,
	// so concurrent callers cannot together overshoot a quota.
	CreateKVWithin(ctx context.Context, key string, value []byte, expiresAt time.Time, quotas ...Quota) (KVEntry, error)
	// KVUsage counts the live entries under prefix and their values' bytes.
	KVUsage(ctx context.Context, prefix string) (count int, bytes int64, err error)
}

// AccessWatch tells a cache of verified tokens whether it may still
// trust what it holds. The mark changes whenever anything that can end
// access already granted was written, by this process or any other
// sharing the store: an access token put on the deny list, a grant
// revoked, a user's not-before time set (continuous access evaluation),
// a user, group, role, role assignment or elevation changed. ok is false
// while the backend cannot vouch for the mark (a node that lost its
// notification connection): the caller then trusts nothing it cached.
// A caller reads the mark before the state it caches, so a write that
// lands between the two changes the mark it compares with next time.
type AccessWatch interface {
	AccessMark(ctx context.Context) (mark uint64, ok bool)
}

// Store is everything a backend provides.
type Store interface {
	Users
	Groups
	Roles
	Elevations
	Credentials
	Sessions
	SignIns
	KV
	// Ping reports whether the backend is reachable; /readyz uses it.
	Ping(ctx context.Context) error
	Close() error
}
