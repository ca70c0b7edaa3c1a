package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"image/png"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// skyDBFile holds the sky view's annotations and snapshots.
const skyDBFile = "sky.db"

// Sky view limits.
const (
	maxAnnotationText = 1000
	// maxSnapshotBytes bounds one PNG snapshot.
	maxSnapshotBytes = 2 << 20
	// maxSnapshotSide bounds a snapshot's width and height in pixels.
	maxSnapshotSide = 4096
	// defaultSnapshotRetention is how long snapshots are kept.
	defaultSnapshotRetention = 30 * 24 * time.Hour
	// maxSnapshotsPerJob bounds one job's snapshots; the oldest go first.
	maxSnapshotsPerJob   = 50
	envSnapshotRetention = "HORIZONS_SNAPSHOT_RETENTION"
)

// annotation is a note pinned to a sky position (and optionally to a
// detection by name) of one job's results.
type annotation struct {
	ID        string    `json:"id"`
	JobID     string    `json:"job_id"`
	AuthorID  string    `json:"author_id"`
	Author    string    `json:"author"`
	RA        float64   `json:"ra_deg"`
	Dec       float64   `json:"dec_deg"`
	Detection string    `json:"detection"`
	Text      string    `json:"text"`
	CreatedAt time.Time `json:"created_at"`
}

// snapshot describes a saved PNG of the sky view of one job.
type snapshot struct {
	ID        string    `json:"id"`
	JobID     string    `json:"job_id"`
	AuthorID  string    `json:"author_id"`
	Author    string    `json:"author"`
	Width     int       `json:"width"`
	Height    int       `json:"height"`
	Bytes     int       `json:"bytes"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	URL       string    `json:"url"`
}

// skyStore keeps annotations and snapshots in a SQLite file of the data
// directory. Snapshots older than the retention period are deleted when
// snapshots are written or listed.
type skyStore struct {
	db        *sql.DB
	retention time.Duration
	now       func() time.Time
}

func openSkyStore(ctx context.Context, path string, retention time.Duration) (*skyStore, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sky store: create directory for %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sky store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	const schema = `
	CREATE TABLE IF NOT EXISTS annotations (
		id TEXT PRIMARY KEY, job_id TEXT NOT NULL, author_id TEXT NOT NULL, author TEXT NOT NULL,
		ra REAL NOT NULL, dec REAL NOT NULL, detection TEXT NOT NULL, text TEXT NOT NULL, created_at INTEGER NOT NULL);
	CREATE INDEX IF NOT EXISTS annotations_job ON annotations (job_id, created_at);
	CREATE TABLE IF NOT EXISTS snapshots (
		id TEXT PRIMARY KEY, job_id TEXT NOT NULL, author_id TEXT NOT NULL, author TEXT NOT NULL,
		width INTEGER NOT NULL, height INTEGER NOT NULL, png BLOB NOT NULL, created_at INTEGER NOT NULL);
	CREATE INDEX IF NOT EXISTS snapshots_job ON snapshots (job_id, created_at);`
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("sky store: create tables in %s: %w", path, err)
	}
	if retention <= 0 {
		retention = defaultSnapshotRetention
	}
	return &skyStore{db: db, retention: retention, now: func() time.Time { return time.Now().UTC() }}, nil
}

func (k *skyStore) Close() error { return k.db.Close() }

func (k *skyStore) addAnnotation(ctx context.Context, a *annotation) error {
	a.ID, a.CreatedAt = uuid.NewString(), k.now()
	_, err := k.db.ExecContext(ctx, `INSERT INTO annotations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.JobID, a.AuthorID, a.Author, a.RA, a.Dec, a.Detection, a.Text, a.CreatedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("sky store: add annotation to job %s: %w", a.JobID, err)
	}
	return nil
}

func (k *skyStore) annotations(ctx context.Context, job string) ([]annotation, error) {
	rows, err := k.db.QueryContext(ctx, `SELECT id, job_id, author_id, author, ra, dec, detection, text, created_at FROM annotations WHERE job_id = ? ORDER BY created_at, id`, job)
	if err != nil {
		return nil, fmt.Errorf("sky store: annotations of job %s: %w", job, err)
	}
	defer rows.Close()
	out := []annotation{}
	for rows.Next() {
		var a annotation
		var at int64
		if err := rows.Scan(&a.ID, &a.JobID, &a.AuthorID, &a.Author, &a.RA, &a.Dec, &a.Detection, &a.Text, &at); err != nil {
			return nil, fmt.Errorf("sky store: read annotation: %w", err)
		}
		a.CreatedAt = time.Unix(0, at).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// annotation returns one annotation; sql.ErrNoRows when there is none.
func (k *skyStore) annotation(ctx context.Context, id string) (annotation, error) {
	var a annotation
	var at int64
	err := k.db.QueryRowContext(ctx, `SELECT id, job_id, author_id, author, ra, dec, detection, text, created_at FROM annotations WHERE id = ?`, id).
		Scan(&a.ID, &a.JobID, &a.AuthorID, &a.Author, &a.RA, &a.Dec, &a.Detection, &a.Text, &at)
	a.CreatedAt = time.Unix(0, at).UTC()
	return a, err
}

func (k *skyStore) deleteAnnotation(ctx context.Context, id string) error {
	_, err := k.db.ExecContext(ctx, `DELETE FROM annotations WHERE id = ?`, id)
	return err
}

// prune deletes expired snapshots and, per job, all but the newest
// maxSnapshotsPerJob.
func (k *skyStore) prune(ctx context.Context) error {
	cut := k.now().Add(-k.retention).UnixNano()
	if _, err := k.db.ExecContext(ctx, `DELETE FROM snapshots WHERE created_at < ?`, cut); err != nil {
		return fmt.Errorf("sky store: prune snapshots: %w", err)
	}
	_, err := k.db.ExecContext(ctx, `DELETE FROM snapshots WHERE id IN (
		SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY created_at DESC, id DESC) AS n FROM snapshots) WHERE n > ?)`, maxSnapshotsPerJob)
	if err != nil {
		return fmt.Errorf("sky store: prune snapshots per job: %w", err)
	}
	return nil
}

func (k *skyStore) addSnapshot(ctx context.Context, s *snapshot, data []byte) error {
	s.ID, s.CreatedAt = uuid.NewString(), k.now()
	_, err := k.db.ExecContext(ctx, `INSERT INTO snapshots VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.JobID, s.AuthorID, s.Author, s.Width, s.Height, data, s.CreatedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("sky store: add snapshot of job %s: %w", s.JobID, err)
	}
	k.fill(s, len(data))
	return k.prune(ctx)
}

func (k *skyStore) fill(s *snapshot, n int) {
	s.Bytes = n
	s.ExpiresAt = s.CreatedAt.Add(k.retention)
	s.URL = "/api/v1/snapshots/" + s.ID
}

func (k *skyStore) snapshots(ctx context.Context, job string) ([]snapshot, error) {
	if err := k.prune(ctx); err != nil {
		return nil, err
	}
	rows, err := k.db.QueryContext(ctx, `SELECT id, job_id, author_id, author, width, height, length(png), created_at FROM snapshots WHERE job_id = ? ORDER BY created_at, id`, job)
	if err != nil {
		return nil, fmt.Errorf("sky store: snapshots of job %s: %w", job, err)
	}
	defer rows.Close()
	out := []snapshot{}
	for rows.Next() {
		var s snapshot
		var at int64
		var n int
		if err := rows.Scan(&s.ID, &s.JobID, &s.AuthorID, &s.Author, &s.Width, &s.Height, &n, &at); err != nil {
			return nil, fmt.Errorf("sky store: read snapshot: %w", err)
		}
		s.CreatedAt = time.Unix(0, at).UTC()
		k.fill(&s, n)
		out = append(out, s)
	}
	return out, rows.Err()
}

// snapshotPNG returns a snapshot's job and image; sql.ErrNoRows when it
// does not exist or has expired.
func (k *skyStore) snapshotPNG(ctx context.Context, id string) (job string, data []byte, err error) {
	cut := k.now().Add(-k.retention).UnixNano()
	err = k.db.QueryRowContext(ctx, `SELECT job_id, png FROM snapshots WHERE id = ? AND created_at >= ?`, id, cut).Scan(&job, &data)
	return job, data, err
}

// ---- HTTP -----------------------------------------------------------------

type annotationRequest struct {
	RA        *float64 `json:"ra_deg"`
	Dec       *float64 `json:"dec_deg"`
	Detection string   `json:"detection"`
	Text      string   `json:"text"`
}

type annotationList struct {
	Annotations []annotation `json:"annotations"`
}

type snapshotList struct {
	Snapshots []snapshot `json:"snapshots"`
}

// handleAddAnnotation serves POST /api/v1/jobs/{id}/annotations.
func (s *server) handleAddAnnotation(w http.ResponseWriter, r *http.Request, u *user) {
	j, err := s.ownedJob(r.Context(), u, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req annotationRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	switch {
	case req.RA == nil:
		err = badRequest("ra_deg", "ra_deg is required")
	case math.IsNaN(*req.RA) || *req.RA < 0 || *req.RA >= 360:
		err = badRequest("ra_deg", "ra_deg = %v: want 0 <= ra_deg < 360", *req.RA)
	case req.Dec == nil:
		err = badRequest("dec_deg", "dec_deg is required")
	case math.IsNaN(*req.Dec) || *req.Dec < -90 || *req.Dec > 90:
		err = badRequest("dec_deg", "dec_deg = %v: want -90 <= dec_deg <= 90", *req.Dec)
	case strings.TrimSpace(req.Text) == "":
		err = badRequest("text", "text is empty")
	case utf8.RuneCountInString(req.Text) > maxAnnotationText:
		err = badRequest("text", "text is %d characters long; at most %d", utf8.RuneCountInString(req.Text), maxAnnotationText)
	case len(req.Detection) > 128:
		err = badRequest("detection", "detection is %d characters long; at most 128", len(req.Detection))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	a := annotation{JobID: j.ID, AuthorID: u.ID, Author: u.Name, RA: *req.RA, Dec: *req.Dec, Detection: req.Detection, Text: strings.TrimSpace(req.Text)}
	if err := s.sky.addAnnotation(r.Context(), &a); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, a)
}

// handleListAnnotations serves GET /api/v1/jobs/{id}/annotations: every
// note on the job, for its owner and admins (nobody else can see the job).
func (s *server) handleListAnnotations(w http.ResponseWriter, r *http.Request, u *user) {
	j, err := s.ownedJob(r.Context(), u, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	as, err := s.sky.annotations(r.Context(), j.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, annotationList{Annotations: as})
}

// handleDeleteAnnotation serves DELETE /api/v1/annotations/{id}: its
// author or an admin may delete it.
func (s *server) handleDeleteAnnotation(w http.ResponseWriter, r *http.Request, u *user) {
	id := r.PathValue("id")
	a, err := s.sky.annotation(r.Context(), id)
	if errors.Is(err, sql.ErrNoRows) {
		s.writeError(w, r, notFound("annotation", id))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.ownedJob(r.Context(), u, a.JobID); err != nil {
		s.writeError(w, r, notFound("annotation", id))
		return
	}
	if a.AuthorID != u.ID && !u.isAdmin() {
		s.writeError(w, r, &apiError{Status: http.StatusForbidden, Code: "permission_denied", Message: "only the author or an admin may delete an annotation"})
		return
	}
	if err := s.sky.deleteAnnotation(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleAddSnapshot serves POST /api/v1/jobs/{id}/snapshots with an
// image/png body of at most 2 MiB and 4096 pixels a side.
func (s *server) handleAddSnapshot(w http.ResponseWriter, r *http.Request, u *user) {
	j, err := s.ownedJob(r.Context(), u, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "image/png") {
		s.writeError(w, r, &apiError{Status: http.StatusUnsupportedMediaType, Code: "invalid_argument", Field: "Content-Type",
			Message: fmt.Sprintf("Content-Type %q: a snapshot is image/png", ct)})
		return
	}
	if r.ContentLength > maxSnapshotBytes {
		s.writeError(w, r, &http.MaxBytesError{Limit: maxSnapshotBytes})
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSnapshotBytes))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		s.writeError(w, r, badRequest("body", "body is not a PNG image: %v", err))
		return
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > maxSnapshotSide || cfg.Height > maxSnapshotSide {
		s.writeError(w, r, badRequest("body", "PNG is %dx%d pixels; each side must be 1 to %d", cfg.Width, cfg.Height, maxSnapshotSide))
		return
	}
	snap := snapshot{JobID: j.ID, AuthorID: u.ID, Author: u.Name, Width: cfg.Width, Height: cfg.Height}
	if err := s.sky.addSnapshot(r.Context(), &snap, data); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", snap.URL)
	writeJSON(w, http.StatusCreated, snap)
}

// handleListSnapshots serves GET /api/v1/jobs/{id}/snapshots.
func (s *server) handleListSnapshots(w http.ResponseWriter, r *http.Request, u *user) {
	j, err := s.ownedJob(r.Context(), u, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ss, err := s.sky.snapshots(r.Context(), j.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, snapshotList{Snapshots: ss})
}

// handleGetSnapshot serves GET /api/v1/snapshots/{id}: the PNG, to whoever
// may see its job.
func (s *server) handleGetSnapshot(w http.ResponseWriter, r *http.Request, u *user) {
	id := r.PathValue("id")
	job, data, err := s.sky.snapshotPNG(r.Context(), id)
	if errors.Is(err, sql.ErrNoRows) {
		s.writeError(w, r, notFound("snapshot", id))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.ownedJob(r.Context(), u, job); err != nil {
		s.writeError(w, r, notFound("snapshot", id))
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "private, max-age=3600")
	_, _ = w.Write(data)
}

// skyRoutes adds the annotation and snapshot endpoints.
func (s *server) skyRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/jobs/{id}/annotations", s.authed(false, s.handleAddAnnotation))
	mux.HandleFunc("GET /api/v1/jobs/{id}/annotations", s.authed(false, s.handleListAnnotations))
	mux.HandleFunc("DELETE /api/v1/annotations/{id}", s.authed(false, s.handleDeleteAnnotation))
	mux.HandleFunc("POST /api/v1/jobs/{id}/snapshots", s.authed(false, s.handleAddSnapshot))
	mux.HandleFunc("GET /api/v1/jobs/{id}/snapshots", s.authed(false, s.handleListSnapshots))
	mux.HandleFunc("GET /api/v1/snapshots/{id}", s.authed(false, s.handleGetSnapshot))
}
