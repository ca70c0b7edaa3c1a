// Package memstore is an in-memory orchestrator.Store: fast, deterministic
// and gone when the process exits. It passes the orchestratortest suite and
// backs tests and examples; use sqlstore for anything that must survive a
// restart.
package memstore

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/orchestrator"
)

// Store is an in-memory orchestrator.Store. It is safe for concurrent use.
type Store struct {
	mu       sync.Mutex
	jobs     map[string]*orchestrator.Job
	byState  map[orchestrator.State]map[string]*orchestrator.Job // index of jobs by state
	idem     map[string]string                                   // owner \x00 key -> job id
	history  map[string][]events.Event
	eventIDs map[string]bool
	outbox   []orchestrator.OutboxRecord
	nextID   int64
	closed   bool
	topic    string
	retain   int
	finished []string // ids of finished jobs, oldest first, when retain > 0
}

// Config configures a Store. The zero value is usable.
type Config struct {
	// Topic is the outbox topic for job events; empty means events.TopicJobs.
	Topic string
	// RetainFinished is how many finished jobs (COMPLETED, FAILED,
	// CANCELLED) the store keeps; 0 keeps every job. Beyond it the oldest
	// finished jobs are dropped with their events and idempotency keys, so
	// a long-running process keeps its memory flat.
	RetainFinished int
}

// New returns an empty store.
func New(cfg *Config) *Store {
	t := events.TopicJobs
	if cfg != nil && cfg.Topic != "" {
		t = cfg.Topic
	}
	retain := 0
	if cfg != nil && cfg.RetainFinished > 0 {
		retain = cfg.RetainFinished
	}
	return &Store{
		retain:   retain,
		jobs:     map[string]*orchestrator.Job{},
		byState:  map[orchestrator.State]map[string]*orchestrator.Job{},
		idem:     map[string]string{},
		history:  map[string][]events.Event{},
		eventIDs: map[string]bool{},
		topic:    t,
	}
}

var _ orchestrator.Store = (*Store)(nil)

func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed {
		return orchestrator.ErrClosed
	}
	return nil
}

func (s *Store) appendEvents(jobID string, evs []events.Event) error {
	seen := map[string]bool{}
	last := int64(0)
	if h := s.history[jobID]; len(h) > 0 {
		last = h[len(h)-1].Sequence
	}
	for _, e := range evs {
		if s.eventIDs[e.ID] || seen[e.ID] {
			return fmt.Errorf("%w: event id %s already stored", orchestrator.ErrConflict, e.ID)
		}
		if e.Subject != jobID {
			return fmt.Errorf("memstore: event %s has subject %q, want job %s", e.ID, e.Subject, jobID)
		}
		if e.Sequence <= last {
			return fmt.Errorf("%w: event %s has sequence %d, not after %d", orchestrator.ErrConflict, e.ID, e.Sequence, last)
		}
		last = e.Sequence
		seen[e.ID] = true
	}
	for _, e := range evs {
		s.eventIDs[e.ID] = true
		s.history[jobID] = append(s.history[jobID], e)
		s.nextID++
		s.outbox = append(s.outbox, orchestrator.OutboxRecord{ID: s.nextID, Topic: s.topic, Event: e, CreatedAt: time.Now().UTC()})
	}
	return nil
}

// CreateJob implements orchestrator.Store.
func (s *Store) CreateJob(ctx context.Context, j *orchestrator.Job, evs []events.Event) (*orchestrator.Job, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, false, err
	}
	if j.IdempotencyKey != "" {
		if id, ok := s.idem[j.Owner+"\x00"+j.IdempotencyKey]; ok {
			return s.jobs[id].Clone(), false, nil
		}
	}
	if _, ok := s.jobs[j.ID]; ok {
		return nil, false, fmt.Errorf("%w: job %s already exists", orchestrator.ErrConflict, j.ID)
	}
	if err := s.appendEvents(j.ID, evs); err != nil {
		return nil, false, err
	}
	c := j.Clone()
	s.put(c)
	if j.IdempotencyKey != "" {
		s.idem[j.Owner+"\x00"+j.IdempotencyKey] = j.ID
	}
	out := c.Clone()
	if c.State.Terminal() {
		s.retireLocked(c.ID)
	}
	return out, true, nil
}

// GetJob implements orchestrator.Store.
func (s *Store) GetJob(ctx context.Context, id string) (*orchestrator.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	j, ok := s.jobs[id]
	if !ok {
		return nil, fmt.Errorf("%w: job %q", orchestrator.ErrNotFound, id)
	}
	return j.Clone(), nil
}

// JobByIdempotencyKey implements orchestrator.Store.
func (s *Store) JobByIdempotencyKey(ctx context.Context, owner, key string) (*orchestrator.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if id, ok := s.idem[owner+"\x00"+key]; ok && key != "" {
		if j, ok := s.jobs[id]; ok {
			return j.Clone(), nil
		}
	}
	return nil, fmt.Errorf("%w: no job of owner %q with idempotency key %q", orchestrator.ErrNotFound, owner, key)
}

func matches(j *orchestrator.Job, owner, wf string, states []orchestrator.State) bool {
	if owner != "" && j.Owner != owner {
		return false
	}
	if wf != "" && j.WorkflowID != wf {
		return false
	}
	if len(states) == 0 {
		return true
	}
	for _, st := range states {
		if j.State == st {
			return true
		}
	}
	return false
}

// ListJobs implements orchestrator.Store.
func (s *Store) ListJobs(ctx context.Context, q orchestrator.ListQuery) (orchestrator.Page, error) {
	if err := q.Normalize(); err != nil {
		return orchestrator.Page{}, err
	}
	var (
		ct  time.Time
		cid string
		err error
	)
	if q.Cursor != "" {
		if ct, cid, err = orchestrator.DecodeCursor(q.Cursor); err != nil {
			return orchestrator.Page{}, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return orchestrator.Page{}, err
	}
	var all []*orchestrator.Job
	s.each(q.States, func(j *orchestrator.Job) {
		if !matches(j, q.Owner, q.WorkflowID, nil) {
			return
		}
		if q.Cursor != "" && !orchestrator.Before(j.CreatedAt, j.ID, ct, cid) {
			return
		}
		all = append(all, j)
	})
	sort.Slice(all, func(a, b int) bool {
		return orchestrator.Before(all[b].CreatedAt, all[b].ID, all[a].CreatedAt, all[a].ID)
	})
	var p orchestrator.Page
	for i, j := range all {
		if i == q.Limit {
			last := p.Jobs[len(p.Jobs)-1]
			p.NextCursor = orchestrator.EncodeCursor(last.CreatedAt, last.ID)
			break
		}
		p.Jobs = append(p.Jobs, j.Clone())
	}
	return p, nil
}

// CountJobs implements orchestrator.Store.
func (s *Store) CountJobs(ctx context.Context, owner string, states []orchestrator.State) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	n := 0
	if owner == "" && len(states) > 0 {
		seen := map[orchestrator.State]bool{}
		for _, st := range states {
			if !seen[st] {
				seen[st] = true
				n += len(s.byState[st])
			}
		}
		return n, nil
	}
	s.each(states, func(j *orchestrator.Job) {
		if matches(j, owner, "", nil) {
			n++
		}
	})
	return n, nil
}

// UpdateJob implements orchestrator.Store.
func (s *Store) UpdateJob(ctx context.Context, j *orchestrator.Job, prev int64, evs []events.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	cur, ok := s.jobs[j.ID]
	if !ok {
		return fmt.Errorf("%w: job %q", orchestrator.ErrNotFound, j.ID)
	}
	if cur.Version != prev {
		return fmt.Errorf("%w: job %s is at version %d, not %d", orchestrator.ErrConflict, j.ID, cur.Version, prev)
	}
	if j.Version != prev+1 {
		return fmt.Errorf("memstore: job %s: new version %d must be %d", j.ID, j.Version, prev+1)
	}
	if err := s.appendEvents(j.ID, evs); err != nil {
		return err
	}
	s.put(j.Clone())
	if j.State.Terminal() && !cur.State.Terminal() {
		s.retireLocked(j.ID)
	}
	return nil
}

// retireLocked records that job id finished and drops the oldest finished
// jobs beyond the retention limit.
func (s *Store) retireLocked(id string) {
	if s.retain <= 0 {
		return
	}
	s.finished = append(s.finished, id)
	for len(s.finished) > s.retain {
		old := s.finished[0]
		s.finished[0] = ""
		s.finished = s.finished[1:]
		j, ok := s.jobs[old]
		if !ok || !j.State.Terminal() {
			continue
		}
		for _, e := range s.history[old] {
			delete(s.eventIDs, e.ID)
		}
		delete(s.history, old)
		if j.IdempotencyKey != "" && s.idem[j.Owner+"\x00"+j.IdempotencyKey] == old {
			delete(s.idem, j.Owner+"\x00"+j.IdempotencyKey)
		}
		s.remove(old)
	}
}

// put stores j (replacing the job with its id) and indexes it by state.
func (s *Store) put(j *orchestrator.Job) {
	if old, ok := s.jobs[j.ID]; ok {
		delete(s.byState[old.State], j.ID)
	}
	s.jobs[j.ID] = j
	m := s.byState[j.State]
	if m == nil {
		m = map[string]*orchestrator.Job{}
		s.byState[j.State] = m
	}
	m[j.ID] = j
}

func (s *Store) remove(id string) {
	if old, ok := s.jobs[id]; ok {
		delete(s.byState[old.State], id)
		delete(s.jobs, id)
	}
}

// each calls f for every job in one of states (every job when empty).
func (s *Store) each(states []orchestrator.State, f func(*orchestrator.Job)) {
	if len(states) == 0 {
		for _, j := range s.jobs {
			f(j)
		}
		return
	}
	seen := map[orchestrator.State]bool{}
	for _, st := range states {
		if seen[st] {
			continue
		}
		seen[st] = true
		for _, j := range s.byState[st] {
			f(j)
		}
	}
}

// JobEvents implements orchestrator.Store.
func (s *Store) JobEvents(ctx context.Context, jobID string, after int64) ([]events.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var out []events.Event
	for _, e := range s.history[jobID] {
		if e.Sequence > after {
			out = append(out, e)
		}
	}
	return out, nil
}

// PendingOutbox implements orchestrator.Store.
func (s *Store) PendingOutbox(ctx context.Context, limit int) ([]orchestrator.OutboxRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > len(s.outbox) {
		limit = len(s.outbox)
	}
	return append([]orchestrator.OutboxRecord(nil), s.outbox[:limit]...), nil
}

// MarkPublished implements orchestrator.Store.
func (s *Store) MarkPublished(ctx context.Context, ids []int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	// The forwarder marks the oldest records, in order: drop that prefix
	// without touching the rest.
	if len(ids) <= len(s.outbox) {
		prefix := true
		for i, id := range ids {
			if s.outbox[i].ID != id {
				prefix = false
				break
			}
		}
		if prefix {
			clear(s.outbox[:len(ids)])
			s.outbox = s.outbox[len(ids):]
			return nil
		}
	}
	done := map[int64]bool{}
	for _, id := range ids {
		done[id] = true
	}
	kept := s.outbox[:0]
	for _, r := range s.outbox {
		if !done[r.ID] {
			kept = append(kept, r)
		}
	}
	clear(s.outbox[len(kept):])
	s.outbox = kept
	return nil
}

// RenewLeases implements orchestrator.Store.
func (s *Store) RenewLeases(ctx context.Context, holder string, until time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if holder == "" {
		return 0, nil
	}
	n := 0
	s.each([]orchestrator.State{orchestrator.StateSubmitted, orchestrator.StateQueued, orchestrator.StateRunning}, func(j *orchestrator.Job) {
		if j.LeaseHolder == holder {
			j.LeaseExpiresAt = until.UTC()
			n++
		}
	})
	return n, nil
}

// ClaimReady implements orchestrator.Store.
func (s *Store) ClaimReady(ctx context.Context, holder string, now, until time.Time, limit int, skipOwners []string) ([]*orchestrator.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 || holder == "" {
		return nil, nil
	}
	skip := map[string]bool{}
	for _, o := range skipOwners {
		skip[o] = true
	}
	var ready []*orchestrator.Job
	for _, j := range s.byState[orchestrator.StateQueued] {
		if j.Backend != "" || j.NextAttemptAt.After(now) || skip[j.Owner] {
			continue
		}
		if j.LeaseHolder != "" && j.LeaseHolder != holder && j.LeaseExpiresAt.After(now) {
			continue
		}
		ready = append(ready, j)
	}
	sort.Slice(ready, func(a, b int) bool { return orchestrator.ReadyOrder(ready[a], ready[b]) })
	if len(ready) > limit {
		ready = ready[:limit]
	}
	out := make([]*orchestrator.Job, len(ready))
	for i, j := range ready {
		j.LeaseHolder, j.LeaseExpiresAt = holder, until.UTC()
		out[i] = j.Clone()
	}
	return out, nil
}

// ReleaseUnplaced implements orchestrator.Store.
func (s *Store) ReleaseUnplaced(ctx context.Context, holder string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	s.each([]orchestrator.State{orchestrator.StateSubmitted, orchestrator.StateQueued}, func(j *orchestrator.Job) {
		if j.LeaseHolder == holder && j.Backend == "" {
			j.LeaseHolder, j.LeaseExpiresAt = "", time.Time{}
		}
	})
	return nil
}

// PlacedUsage implements orchestrator.Store.
func (s *Store) PlacedUsage(ctx context.Context) (map[string]orchestrator.Usage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	out := map[string]orchestrator.Usage{}
	s.each([]orchestrator.State{orchestrator.StateQueued, orchestrator.StateRunning}, func(j *orchestrator.Job) {
		if j.Backend != "" {
			u := out[j.Owner]
			u.Jobs++
			u.GPUs += j.GPUs
			out[j.Owner] = u
		}
	})
	return out, nil
}

// FollowedJobs implements orchestrator.Store.
func (s *Store) FollowedJobs(ctx context.Context, holder string, now time.Time) ([]*orchestrator.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var out []*orchestrator.Job
	s.each([]orchestrator.State{orchestrator.StateQueued, orchestrator.StateRunning}, func(j *orchestrator.Job) {
		if j.Backend != "" && (j.LeaseHolder == holder || !j.LeaseExpiresAt.After(now)) {
			out = append(out, j.Clone())
		}
	})
	sort.Slice(out, func(a, b int) bool { return out[a].CreatedAt.Before(out[b].CreatedAt) })
	return out, nil
}

// Close implements orchestrator.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
