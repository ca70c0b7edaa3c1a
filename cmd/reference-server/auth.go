package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Roles.
const (
	roleAdmin = "admin"
	roleUser  = "user"
)

// adminName is the name of the bootstrap administrator.
const adminName = "admin"

// tokenPrefix starts every generated token, so a leaked token is easy to
// recognise in a secret scanner.
const tokenPrefix = "hz_"

var (
	errUnauthenticated = errors.New("auth: missing or unknown bearer token")
	errDuplicateUser   = errors.New("auth: a user with this name exists")
)

// user is an authenticated principal. Job owners are user ids.
type user struct {
	ID        string
	Name      string
	Role      string
	CreatedAt time.Time
}

func (u *user) isAdmin() bool { return u != nil && u.Role == roleAdmin }

// authStore keeps users and the SHA-256 hashes of their tokens in a SQLite
// file. Tokens are 256-bit random values, so an unsalted fast hash is
// enough: there is nothing to brute-force. Plain tokens are never stored or
// logged; a new token is returned exactly once, to its creator.
type authStore struct {
	db *sql.DB
}

// openAuthStore opens (creating) the user database at path.
func openAuthStore(ctx context.Context, path string) (*authStore, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("auth: create directory for %s: %w", path, err)
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("auth: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	const schema = `CREATE TABLE IF NOT EXISTS users (
		id         TEXT PRIMARY KEY,
		name       TEXT NOT NULL UNIQUE,
		role       TEXT NOT NULL CHECK (role IN ('admin', 'user')),
		token_hash TEXT NOT NULL UNIQUE,
		created_at INTEGER NOT NULL
	)`
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("auth: create users table in %s: %w", path, err)
	}
	// The file holds only hashes, but keep it private anyway.
	_ = os.Chmod(path, 0o600)
	return &authStore{db: db}, nil
}

// Close closes the database.
func (a *authStore) Close() error { return a.db.Close() }

// newToken returns a fresh random bearer token.
func newToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: read random bytes: %w", err)
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// bootstrapAdmin makes sure the admin user exists. With envToken set, the
// admin's token becomes envToken (replacing an earlier one). Without it, a
// token is generated only when there is no admin yet and returned so the
// caller can print it once; later starts return "".
func (a *authStore) bootstrapAdmin(ctx context.Context, envToken string) (generated string, err error) {
	var id, oldHash string
	err = a.db.QueryRowContext(ctx, `SELECT id, token_hash FROM users WHERE name = ?`, adminName).Scan(&id, &oldHash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		tok := envToken
		if tok == "" {
			if tok, err = newToken(); err != nil {
				return "", err
			}
			generated = tok
		}
		_, err = a.db.ExecContext(ctx, `INSERT INTO users (id, name, role, token_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
			uuid.NewString(), adminName, roleAdmin, hashToken(tok), time.Now().UTC().UnixNano())
		if err != nil {
			return "", fmt.Errorf("auth: create admin user: %w", err)
		}
		return generated, nil
	case err != nil:
		return "", fmt.Errorf("auth: look up admin user: %w", err)
	}
	if envToken != "" && hashToken(envToken) != oldHash {
		if _, err := a.db.ExecContext(ctx, `UPDATE users SET token_hash = ?, role = ? WHERE id = ?`, hashToken(envToken), roleAdmin, id); err != nil {
			return "", fmt.Errorf("auth: set admin token from %s: %w", envAdminToken, err)
		}
	}
	return "", nil
}

var userNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// createUser adds a user and returns it with its token (shown once).
func (a *authStore) createUser(ctx context.Context, name, role string) (*user, string, error) {
	if role == "" {
		role = roleUser
	}
	if !userNameRe.MatchString(name) {
		return nil, "", &apiError{Status: http.StatusBadRequest, Code: "invalid_argument", Field: "name",
			Message: fmt.Sprintf("name %q must be 1-64 characters: letters, digits and . _ @ -, starting with a letter or digit", name)}
	}
	if role != roleAdmin && role != roleUser {
		return nil, "", &apiError{Status: http.StatusBadRequest, Code: "invalid_argument", Field: "role",
			Message: fmt.Sprintf("role %q is unknown; want \"admin\" or \"user\"", role)}
	}
	tok, err := newToken()
	if err != nil {
		return nil, "", err
	}
	u := &user{ID: uuid.NewString(), Name: name, Role: role, CreatedAt: time.Now().UTC()}
	_, err = a.db.ExecContext(ctx, `INSERT INTO users (id, name, role, token_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
		u.ID, u.Name, u.Role, hashToken(tok), u.CreatedAt.UnixNano())
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed: users.name") {
			return nil, "", fmt.Errorf("%w: %q", errDuplicateUser, name)
		}
		return nil, "", fmt.Errorf("auth: create user %q: %w", name, err)
	}
	return u, tok, nil
}

// authenticate returns the user whose token is tok.
func (a *authStore) authenticate(ctx context.Context, tok string) (*user, error) {
	if tok == "" {
		return nil, errUnauthenticated
	}
	want := hashToken(tok)
	var u user
	var hash string
	var created int64
	err := a.db.QueryRowContext(ctx, `SELECT id, name, role, token_hash, created_at FROM users WHERE token_hash = ?`, want).
		Scan(&u.ID, &u.Name, &u.Role, &hash, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("auth: look up token: %w", err)
	}
	// The lookup is by hash already; compare in constant time anyway so
	// no code path compares secrets byte by byte.
	if subtle.ConstantTimeCompare([]byte(hash), []byte(want)) != 1 {
		return nil, errUnauthenticated
	}
	u.CreatedAt = time.Unix(0, created).UTC()
	return &u, nil
}

// ping checks the database.
func (a *authStore) ping(ctx context.Context) error { return a.db.PingContext(ctx) }

// bearerToken extracts the token from "Authorization: Bearer <tok>", or,
// when allowQuery is set (WebSocket and SSE, which browsers cannot give
// headers), from the token query parameter.
func bearerToken(r *http.Request, allowQuery bool) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	if allowQuery {
		return r.URL.Query().Get("token")
	}
	return ""
}

type ctxKey int

const userKey ctxKey = 0

func userFrom(ctx context.Context) *user {
	u, _ := ctx.Value(userKey).(*user)
	return u
}
