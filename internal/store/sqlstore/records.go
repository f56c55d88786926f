package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stepgate/stepgate/internal/store"
)

// Times are stored as Unix microseconds in BIGINT columns on every engine,
// so one scan path serves all dialects and ordering is exact.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func toJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only plain slices of strings and events are marshalled here.
		panic(fmt.Sprintf("sqlstore: marshal %T: %v", v, err))
	}
	return string(b)
}

func fromJSON(s string, v any) error {
	if s == "" {
		return nil
	}
	return json.Unmarshal([]byte(s), v)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

var users = table[store.User]{
	name:    "users",
	key:     "id",
	columns: "id, username, email, display_name, groups_json, roles_json, disabled, password_hash, created_at, updated_at, version",
	scan: func(r scanner) (store.User, error) {
		var u store.User
		var groups, roles string
		var created, updated int64
		err := r.Scan(&u.ID, &u.Username, &u.Email, &u.DisplayName, &groups, &roles, &u.Disabled, &u.PasswordHash, &created, &updated, &u.Version)
		if err != nil {
			return u, err
		}
		u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
		if err := fromJSON(groups, &u.Groups); err != nil {
			return u, fmt.Errorf("user %s groups: %w", u.ID, err)
		}
		if err := fromJSON(roles, &u.Roles); err != nil {
			return u, fmt.Errorf("user %s roles: %w", u.ID, err)
		}
		return u, nil
	},
	values: func(u store.User) ([]string, []any) {
		return []string{"username", "email", "display_name", "groups_json", "roles_json", "disabled", "password_hash", "created_at", "updated_at", "version"},
			[]any{strings.ToLower(u.Username), u.Email, u.DisplayName, toJSON(nonNil(u.Groups)), toJSON(nonNil(u.Roles)), u.Disabled, u.PasswordHash, micros(u.CreatedAt), micros(u.UpdatedAt), u.Version}
	},
	keyOf:     func(u store.User) string { return u.ID },
	versionOf: func(u store.User) int64 { return u.Version },
	stamp: func(u *store.User, now time.Time, v int64) {
		u.Username = strings.ToLower(u.Username)
		u.CreatedAt, u.UpdatedAt, u.Version = orNow(u.CreatedAt, now), now.UTC().Truncate(time.Microsecond), v
	},
}

var groups = table[store.Group]{
	name:    "groups",
	key:     "name",
	columns: "name, display_name, description, parents_json, created_at, updated_at, version",
	scan: func(r scanner) (store.Group, error) {
		var g store.Group
		var parents string
		var created, updated int64
		if err := r.Scan(&g.Name, &g.DisplayName, &g.Description, &parents, &created, &updated, &g.Version); err != nil {
			return g, err
		}
		g.CreatedAt, g.UpdatedAt = fromMicros(created), fromMicros(updated)
		return g, fromJSON(parents, &g.Parents)
	},
	values: func(g store.Group) ([]string, []any) {
		return []string{"display_name", "description", "parents_json", "created_at", "updated_at", "version"},
			[]any{g.DisplayName, g.Description, toJSON(nonNil(g.Parents)), micros(g.CreatedAt), micros(g.UpdatedAt), g.Version}
	},
	keyOf:     func(g store.Group) string { return g.Name },
	versionOf: func(g store.Group) int64 { return g.Version },
	stamp: func(g *store.Group, now time.Time, v int64) {
		g.Name = strings.ToLower(g.Name)
		g.CreatedAt, g.UpdatedAt, g.Version = orNow(g.CreatedAt, now), now.UTC().Truncate(time.Microsecond), v
	},
}

var roles = table[store.Role]{
	name:    "roles",
	key:     "name",
	columns: "name, description, created_at, updated_at, version",
	scan: func(r scanner) (store.Role, error) {
		var ro store.Role
		var created, updated int64
		err := r.Scan(&ro.Name, &ro.Description, &created, &updated, &ro.Version)
		ro.CreatedAt, ro.UpdatedAt = fromMicros(created), fromMicros(updated)
		return ro, err
	},
	values: func(r store.Role) ([]string, []any) {
		return []string{"description", "created_at", "updated_at", "version"},
			[]any{r.Description, micros(r.CreatedAt), micros(r.UpdatedAt), r.Version}
	},
	keyOf:     func(r store.Role) string { return r.Name },
	versionOf: func(r store.Role) int64 { return r.Version },
	stamp: func(r *store.Role, now time.Time, v int64) {
		r.Name = strings.ToLower(r.Name)
		r.CreatedAt, r.UpdatedAt, r.Version = orNow(r.CreatedAt, now), now.UTC().Truncate(time.Microsecond), v
	},
}

var credentials = table[store.Credential]{
	name:    "credentials",
	key:     "id",
	columns: "id, user_id, type, name, data, created_at, updated_at, last_used_at, version",
	scan: func(r scanner) (store.Credential, error) {
		var c store.Credential
		var created, updated, used int64
		err := r.Scan(&c.ID, &c.UserID, &c.Type, &c.Name, &c.Data, &created, &updated, &used, &c.Version)
		c.CreatedAt, c.UpdatedAt, c.LastUsedAt = fromMicros(created), fromMicros(updated), fromMicros(used)
		return c, err
	},
	values: func(c store.Credential) ([]string, []any) {
		data := c.Data
		if data == nil {
			data = []byte{}
		}
		return []string{"user_id", "type", "name", "data", "created_at", "updated_at", "last_used_at", "version"},
			[]any{c.UserID, c.Type, c.Name, data, micros(c.CreatedAt), micros(c.UpdatedAt), micros(c.LastUsedAt), c.Version}
	},
	keyOf:     func(c store.Credential) string { return c.ID },
	versionOf: func(c store.Credential) int64 { return c.Version },
	stamp: func(c *store.Credential, now time.Time, v int64) {
		c.CreatedAt, c.UpdatedAt, c.Version = orNow(c.CreatedAt, now), now.UTC().Truncate(time.Microsecond), v
	},
}

var sessions = table[store.Session]{
	name:    "sessions",
	key:     "id",
	columns: "id, user_id, created_at, last_seen_at, expires_at, events_json, ip, user_agent, version",
	scan: func(r scanner) (store.Session, error) {
		var s store.Session
		var created, seen, expires int64
		var events string
		if err := r.Scan(&s.ID, &s.UserID, &created, &seen, &expires, &events, &s.IP, &s.UserAgent, &s.Version); err != nil {
			return s, err
		}
		s.CreatedAt, s.LastSeenAt, s.ExpiresAt = fromMicros(created), fromMicros(seen), fromMicros(expires)
		return s, fromJSON(events, &s.Events)
	},
	values: func(s store.Session) ([]string, []any) {
		events := s.Events
		if events == nil {
			events = []store.AuthEvent{}
		}
		return []string{"user_id", "created_at", "last_seen_at", "expires_at", "events_json", "ip", "user_agent", "version"},
			[]any{s.UserID, micros(s.CreatedAt), micros(s.LastSeenAt), micros(s.ExpiresAt), toJSON(events), s.IP, s.UserAgent, s.Version}
	},
	keyOf:     func(s store.Session) string { return s.ID },
	versionOf: func(s store.Session) int64 { return s.Version },
	stamp: func(s *store.Session, now time.Time, v int64) {
		s.CreatedAt, s.Version = orNow(s.CreatedAt, now), v
		if s.LastSeenAt.IsZero() {
			s.LastSeenAt = s.CreatedAt
		}
	},
}

var kv = table[store.KVEntry]{
	name:    "kv",
	key:     "name",
	columns: "name, value, updated_at, expires_at, version",
	scan: func(r scanner) (store.KVEntry, error) {
		var e store.KVEntry
		var updated, expires int64
		err := r.Scan(&e.Key, &e.Value, &updated, &expires, &e.Version)
		e.UpdatedAt, e.ExpiresAt = fromMicros(updated), fromMicros(expires)
		return e, err
	},
	values: func(e store.KVEntry) ([]string, []any) {
		return []string{"value", "updated_at", "expires_at", "version"}, []any{e.Value, micros(e.UpdatedAt), micros(e.ExpiresAt), e.Version}
	},
	keyOf:     func(e store.KVEntry) string { return e.Key },
	versionOf: func(e store.KVEntry) int64 { return e.Version },
	stamp: func(e *store.KVEntry, now time.Time, v int64) {
		e.UpdatedAt, e.Version = now.UTC().Truncate(time.Microsecond), v
	},
}

func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now.UTC().Truncate(time.Microsecond)
	}
	return t.UTC().Truncate(time.Microsecond)
}

// Users

func (s *DB) CreateUser(ctx context.Context, u store.User) (store.User, error) {
	return users.create(ctx, s, u)
}

func (s *DB) GetUser(ctx context.Context, id string) (store.User, error) {
	u, err := users.get(ctx, s, s.db, "id = ?", id)
	return s.withGrants(ctx, u, err)
}

func (s *DB) GetUserByName(ctx context.Context, username string) (store.User, error) {
	u, err := users.get(ctx, s, s.db, "username = ?", strings.ToLower(username))
	return s.withGrants(ctx, u, err)
}

func (s *DB) ListUsers(ctx context.Context) ([]store.User, error) {
	return users.list(ctx, s, "", "username")
}

func (s *DB) FindUsers(ctx context.Context, q store.UserQuery) ([]store.User, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	where, args := "username > ?", []any{q.After}
	if q.Match != "" {
		// LIKE with the pattern's own wildcards escaped: a search for
		// "a_b" means those three characters.
		pattern := "%" + likeEscaper.Replace(q.Match) + "%"
		like := " " + s.dialect.CaseInsensitiveLike + ` ? ESCAPE '\'`
		where += " AND (username" + like + " OR email" + like + " OR display_name" + like + ")"
		args = append(args, pattern, pattern, pattern)
	}
	return users.list(ctx, s, where, "username LIMIT "+strconv.Itoa(q.Limit), args...)
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`)

func (s *DB) UpdateUser(ctx context.Context, id string, fn func(store.User) (store.User, error)) (store.User, error) {
	defer s.accessChanged()
	return users.update(ctx, s, id, fn)
}

func (s *DB) DeleteUser(ctx context.Context, id string) error {
	defer s.accessChanged()
	// A deleted user's sessions, credentials and role assignments go
	// with it, in one transaction, so no orphaned session can outlive
	// its account.
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{"DELETE FROM sessions WHERE user_id = ?", "DELETE FROM credentials WHERE user_id = ?"} {
			if _, err := tx.ExecContext(ctx, s.q(q), id); err != nil {
				return err
			}
		}
		if err := s.deleteAssignments(ctx, tx, "principal = ?", store.UserPrincipal(id)); err != nil {
			return err
		}
		return s.execOne(ctx, tx, "DELETE FROM users WHERE id = ?", id)
	})
}

// Groups

func (s *DB) CreateGroup(ctx context.Context, g store.Group) (store.Group, error) {
	return groups.create(ctx, s, g)
}

func (s *DB) GetGroup(ctx context.Context, name string) (store.Group, error) {
	return groups.get(ctx, s, s.db, "name = ?", strings.ToLower(name))
}

func (s *DB) ListGroups(ctx context.Context) ([]store.Group, error) {
	return groups.list(ctx, s, "", "name")
}

func (s *DB) UpdateGroup(ctx context.Context, name string, fn func(store.Group) (store.Group, error)) (store.Group, error) {
	defer s.accessChanged()
	return groups.update(ctx, s, strings.ToLower(name), fn)
}

// DeleteGroup takes the group's role assignments along: a group made
// later under the same name must not inherit the roles of the old one.
func (s *DB) DeleteGroup(ctx context.Context, name string) error {
	defer s.accessChanged()
	name = strings.ToLower(name)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.deleteAssignments(ctx, tx, "principal = ?", store.GroupPrincipal(name)); err != nil {
			return err
		}
		return s.execOne(ctx, tx, "DELETE FROM groups WHERE name = ?", name)
	})
}

// Roles

func (s *DB) CreateRole(ctx context.Context, r store.Role) (store.Role, error) {
	return roles.create(ctx, s, r)
}

func (s *DB) GetRole(ctx context.Context, name string) (store.Role, error) {
	return roles.get(ctx, s, s.db, "name = ?", strings.ToLower(name))
}

func (s *DB) ListRoles(ctx context.Context) ([]store.Role, error) {
	return roles.list(ctx, s, "", "name")
}

func (s *DB) UpdateRole(ctx context.Context, name string, fn func(store.Role) (store.Role, error)) (store.Role, error) {
	defer s.accessChanged()
	return roles.update(ctx, s, strings.ToLower(name), fn)
}

// DeleteRole takes the role's assignments along: a role made later
// under the same name must not come back to those who held the old
// one, actively or as eligible.
func (s *DB) DeleteRole(ctx context.Context, name string) error {
	defer s.accessChanged()
	name = strings.ToLower(name)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.deleteAssignments(ctx, tx, "role = ?", name); err != nil {
			return err
		}
		return s.execOne(ctx, tx, "DELETE FROM roles WHERE name = ?", name)
	})
}

// Credentials

func (s *DB) CreateCredential(ctx context.Context, c store.Credential) (store.Credential, error) {
	return credentials.create(ctx, s, c)
}

func (s *DB) GetCredential(ctx context.Context, id string) (store.Credential, error) {
	return credentials.get(ctx, s, s.db, "id = ?", id)
}

func (s *DB) ListCredentials(ctx context.Context, userID string) ([]store.Credential, error) {
	return credentials.list(ctx, s, "user_id = ?", "created_at, id", userID)
}

func (s *DB) UpdateCredential(ctx context.Context, id string, fn func(store.Credential) (store.Credential, error)) (store.Credential, error) {
	return credentials.update(ctx, s, id, fn)
}

func (s *DB) DeleteCredential(ctx context.Context, id string) error {
	return credentials.delete(ctx, s, id)
}

// Sessions

func (s *DB) CreateSession(ctx context.Context, sess store.Session) (store.Session, error) {
	return sessions.create(ctx, s, sess)
}

func (s *DB) GetSession(ctx context.Context, id string) (store.Session, error) {
	return sessions.get(ctx, s, s.db, "id = ?", id)
}

func (s *DB) UpdateSession(ctx context.Context, id string, fn func(store.Session) (store.Session, error)) (store.Session, error) {
	return sessions.update(ctx, s, id, fn)
}

func (s *DB) ReplaceSession(ctx context.Context, oldID string, next store.Session) (store.Session, error) {
	var out store.Session
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.execOne(ctx, tx, "DELETE FROM sessions WHERE id = ?", oldID); err != nil {
			return err
		}
		var err error
		out, err = sessions.insert(ctx, s, tx, next)
		return err
	})
	return out, err
}

func (s *DB) DeleteSession(ctx context.Context, id string) error {
	return sessions.delete(ctx, s, id)
}

func (s *DB) ListUserSessions(ctx context.Context, userID string) ([]store.Session, error) {
	return sessions.list(ctx, s, "user_id = ?", "created_at, id", userID)
}

func (s *DB) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	return s.deleteWhere(ctx, "DELETE FROM sessions WHERE user_id = ?", userID)
}

func (s *DB) DeleteExpiredSessions(ctx context.Context, before time.Time) (int, error) {
	return s.deleteWhere(ctx, "DELETE FROM sessions WHERE expires_at < ?", micros(before))
}

func (s *DB) deleteWhere(ctx context.Context, query string, args ...any) (int, error) {
	res, err := s.db.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// Key/value

// expired reports whether e has passed its expiry.
func (s *DB) expired(e store.KVEntry) bool {
	return !e.ExpiresAt.IsZero() && !s.now().Before(e.ExpiresAt)
}

func (s *DB) GetKV(ctx context.Context, key string) (store.KVEntry, error) {
	e, err := kv.get(ctx, s, s.db, "name = ?", key)
	if err == nil && s.expired(e) {
		return store.KVEntry{}, store.ErrNotFound
	}
	return e, err
}

func (s *DB) CreateKV(ctx context.Context, key string, value []byte, expiresAt time.Time) (store.KVEntry, error) {
	defer s.accessKVChanged(key)
	var out store.KVEntry
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// An expired entry no longer holds its key.
		if _, err := tx.ExecContext(ctx, s.q("DELETE FROM kv WHERE name = ? AND expires_at <> 0 AND expires_at <= ?"), key, micros(s.now())); err != nil {
			return err
		}
		var err error
		out, err = kv.insert(ctx, s, tx, store.KVEntry{Key: key, Value: value, ExpiresAt: expiresAt.UTC().Truncate(time.Microsecond)})
		return err
	})
	return out, err
}

func (s *DB) UpdateKV(ctx context.Context, key string, fn func([]byte) ([]byte, error)) (store.KVEntry, error) {
	defer s.accessKVChanged(key)
	return kv.update(ctx, s, key, func(e store.KVEntry) (store.KVEntry, error) {
		if s.expired(e) {
			return e, store.ErrNotFound
		}
		v, err := fn(e.Value)
		e.Value = v
		return e, err
	})
}

func (s *DB) RenewKV(ctx context.Context, key string, fn func([]byte) ([]byte, time.Time, error)) (store.KVEntry, error) {
	defer s.accessKVChanged(key)
	return kv.update(ctx, s, key, func(e store.KVEntry) (store.KVEntry, error) {
		if s.expired(e) {
			return e, store.ErrNotFound
		}
		v, expiresAt, err := fn(e.Value)
		e.Value, e.ExpiresAt = v, expiresAt.UTC().Truncate(time.Microsecond)
		return e, err
	})
}

func (s *DB) DeleteExpiredKV(ctx context.Context, before time.Time) (int, error) {
	n, err := s.deleteWhere(ctx, "DELETE FROM kv WHERE expires_at <> 0 AND expires_at < ?", micros(before))
	if err != nil {
		return n, err
	}
	return n, s.reclaim(ctx)
}

// reclaim gives the database's free pages back to the file system, so
// a burst of short-lived entries (kept requests, say) does not leave
// the file at its high-water mark for good.
func (s *DB) reclaim(ctx context.Context) error {
	if s.dialect.Reclaim == "" {
		return nil
	}
	// Read every row: some drivers free one page per step.
	rows, err := s.db.QueryContext(ctx, s.dialect.Reclaim)
	if err != nil {
		return fmt.Errorf("reclaim free pages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}

func (s *DB) CreateKVWithin(ctx context.Context, key string, value []byte, expiresAt time.Time, quotas ...store.Quota) (store.KVEntry, error) {
	defer s.accessKVChanged(key)
	var out store.KVEntry
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if s.dialect.QuotaLock != "" {
			if _, err := tx.ExecContext(ctx, s.dialect.QuotaLock); err != nil {
				return err
			}
		}
		now := micros(s.now())
		if _, err := tx.ExecContext(ctx, s.q("DELETE FROM kv WHERE name = ? AND expires_at <> 0 AND expires_at <= ?"), key, now); err != nil {
			return err
		}
		for _, q := range quotas {
			if !strings.HasPrefix(key, q.Prefix) {
				continue
			}
			n, size, err := s.usage(ctx, tx, q.Prefix, now)
			if err != nil {
				return err
			}
			if int64(n)+1 > int64(q.MaxCount) || size+int64(len(value)) > q.MaxBytes {
				return &store.QuotaError{Quota: q}
			}
		}
		var err error
		out, err = kv.insert(ctx, s, tx, store.KVEntry{Key: key, Value: value, ExpiresAt: expiresAt.UTC().Truncate(time.Microsecond)})
		return err
	})
	return out, err
}

func (s *DB) KVUsage(ctx context.Context, prefix string) (int, int64, error) {
	return s.usage(ctx, s.db, prefix, micros(s.now()))
}

// usage counts the entries under prefix that are live at now, and the
// bytes of their values.
func (s *DB) usage(ctx context.Context, q queryer, prefix string, now int64) (int, int64, error) {
	where, args := s.namePrefix(prefix)
	var n int
	var size int64
	err := q.QueryRowContext(ctx, s.q("SELECT COUNT(*), COALESCE(SUM(LENGTH(value)), 0) FROM kv WHERE "+where+" AND (expires_at = 0 OR expires_at > ?)"),
		append(args, now)...).Scan(&n, &size)
	return n, size, err
}

// namePrefix is the condition that a kv name starts with prefix: a
// range over the index when the dialect has one and prefix ends in a
// byte that has a successor, else substr (so '%' and '_' mean
// themselves either way).
func (s *DB) namePrefix(prefix string) (string, []any) {
	if s.dialect.NameRange != "" && prefix != "" && prefix[len(prefix)-1] < 0x7f {
		end := prefix[:len(prefix)-1] + string(prefix[len(prefix)-1]+1)
		return s.dialect.NameRange, []any{prefix, end}
	}
	return "substr(name, 1, ?) = ?", []any{utf8.RuneCountInString(prefix), prefix}
}

func (s *DB) DeleteKV(ctx context.Context, key string) error {
	defer s.accessKVChanged(key)
	return kv.delete(ctx, s, key)
}

func (s *DB) ListKV(ctx context.Context, prefix string) ([]store.KVEntry, error) {
	// substr rather than LIKE, so '%' and '_' in a prefix mean themselves,
	// and rather than a range scan, which collations may reorder.
	all, err := kv.list(ctx, s, "substr(name, 1, ?) = ?", "name", utf8.RuneCountInString(prefix), prefix)
	live := all[:0]
	for _, e := range all {
		if !s.expired(e) {
			live = append(live, e)
		}
	}
	return live, err
}
