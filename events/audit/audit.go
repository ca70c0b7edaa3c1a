// Package audit keeps the compliance audit trail of Cosmic Horizons events:
// an append-only SHA-256 hash chain in which every record commits to the
// event it holds and to the record before it, so that changing, removing or
// reordering any stored record is detected by [Chain.Verify], which names the
// first record that does not check out.
//
// A record's hash is SHA-256 over the previous record's hash followed by the
// canonical encoding of the event ([Canonical]): every envelope field, length
// prefixed, with the time in RFC 3339 (nanoseconds and zone) and the payload
// compacted. The first record's previous hash is 32 zero bytes.
//
// The chain is a consumer like any other: [Chain.Handler] is an
// events.HandlerFunc for a router. Appending is idempotent by event id, so the
// at-least-once redeliveries of a transport leave one record per event.
// Records live in a [Store]; [MemStore] keeps them in memory, and a database
// store implements the same four methods (append-only: no update, no delete).
//
// Links catch every change except cutting records off the end. To catch that
// too, keep the head ([Report.Head], or the last [Record.Hash]) somewhere the
// store's writers cannot reach, and compare.
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cosmic-horizons/horizons/events"
)

// HashSize is the size of a record hash.
const HashSize = sha256.Size

// Hash is a SHA-256 digest.
type Hash [HashSize]byte

// String returns the hash in hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Record is one entry of the chain.
type Record struct {
	// Seq numbers the records from 1 without gaps.
	Seq int64
	// Event is the audited event.
	Event events.Event
	// PrevHash is the hash of record Seq-1 (zero for the first record).
	PrevHash Hash
	// Hash is SHA-256(PrevHash || Canonical(Event)).
	Hash Hash
}

// ErrConflict reports an append that lost a race: the store already has a
// record with that sequence number.
var ErrConflict = errors.New("audit: record sequence already taken")

// Store keeps the records. Implementations are append-only.
type Store interface {
	// Append stores r, whose Seq must be one more than the last record's;
	// otherwise it returns an error wrapping ErrConflict.
	Append(ctx context.Context, r Record) error
	// Last returns the last record, and false when the store is empty.
	Last(ctx context.Context) (Record, bool, error)
	// HasEvent reports whether a record holds the event with id.
	HasEvent(ctx context.Context, id string) (bool, error)
	// Range returns up to limit records with Seq >= from, in order.
	Range(ctx context.Context, from int64, limit int) ([]Record, error)
}

// Canonical returns the bytes of e that the chain hashes: each envelope field
// as a 4-byte big-endian length and its bytes, in the order id, type, source,
// subject, time (RFC 3339 with nanoseconds and zone), schema_version,
// correlation_id, sequence (decimal), data (compacted JSON).
func Canonical(e events.Event) ([]byte, error) {
	var data bytes.Buffer
	if len(e.Data) > 0 {
		if err := json.Compact(&data, e.Data); err != nil {
			return nil, fmt.Errorf("audit: data of event %s is not JSON: %w", e.ID, err)
		}
	}
	fields := [][]byte{
		[]byte(e.ID), []byte(e.Type), []byte(e.Source), []byte(e.Subject),
		[]byte(e.Time.Format(time.RFC3339Nano)), []byte(e.SchemaVersion), []byte(e.CorrelationID),
		fmt.Appendf(nil, "%d", e.Sequence), data.Bytes(),
	}
	var out []byte
	for _, f := range fields {
		out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
		out = append(out, f...)
	}
	return out, nil
}

// HashRecord returns SHA-256(prev || Canonical(e)).
func HashRecord(prev Hash, e events.Event) (Hash, error) {
	c, err := Canonical(e)
	if err != nil {
		return Hash{}, err
	}
	h := sha256.New()
	h.Write(prev[:])
	h.Write(c)
	var out Hash
	copy(out[:], h.Sum(nil))
	return out, nil
}

// Chain appends events to a Store and verifies it. It is safe for concurrent
// use; appends are serialised.
type Chain struct {
	store Store
	mu    sync.Mutex
}

// New returns a Chain over store.
func New(store Store) *Chain { return &Chain{store: store} }

// Append records e after the last record. When a record already holds e.ID
// it returns that fact (appended false) and changes nothing.
func (c *Chain) Append(ctx context.Context, e events.Event) (rec Record, appended bool, err error) {
	if e.ID == "" {
		return Record{}, false, fmt.Errorf("audit: event has an empty id")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if seen, err := c.store.HasEvent(ctx, e.ID); err != nil {
		return Record{}, false, fmt.Errorf("audit: look up event %s: %w", e.ID, err)
	} else if seen {
		return Record{}, false, nil
	}
	last, ok, err := c.store.Last(ctx)
	if err != nil {
		return Record{}, false, fmt.Errorf("audit: read the last record: %w", err)
	}
	rec = Record{Seq: 1, Event: e}
	if ok {
		rec.Seq, rec.PrevHash = last.Seq+1, last.Hash
	}
	if rec.Hash, err = HashRecord(rec.PrevHash, e); err != nil {
		return Record{}, false, err
	}
	if err := c.store.Append(ctx, rec); err != nil {
		return Record{}, false, fmt.Errorf("audit: append record %d (event %s): %w", rec.Seq, e.ID, err)
	}
	return rec, true, nil
}

// Records returns up to limit records from sequence number from, in order.
func (c *Chain) Records(ctx context.Context, from int64, limit int) ([]Record, error) {
	recs, err := c.store.Range(ctx, from, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: read records from %d: %w", from, err)
	}
	return recs, nil
}

// ReplayRange re-delivers to h, in chain order (the order the events were
// recorded), every recorded event whose time is in [from, to) (a zero to
// means no upper bound), optionally only those of one subject (job). It
// returns how many h accepted and stops at the first error of h or when ctx
// is done. The chain holds every event once, so this replays a time range
// of the whole event history to a named consumer; consumers stay
// idempotent by event id.
func (c *Chain) ReplayRange(ctx context.Context, from, to time.Time, subject string, h events.HandlerFunc) (int, error) {
	if h == nil {
		return 0, fmt.Errorf("audit: ReplayRange: handler is nil")
	}
	if !to.IsZero() && !from.Before(to) {
		return 0, fmt.Errorf("audit: ReplayRange: from %s is not before to %s", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	const page = 500
	n := 0
	for next := int64(1); ; {
		recs, err := c.store.Range(ctx, next, page)
		if err != nil {
			return n, fmt.Errorf("audit: replay: read records from %d: %w", next, err)
		}
		for _, r := range recs {
			next = r.Seq + 1
			e := r.Event
			if e.Time.Before(from) || (!to.IsZero() && !e.Time.Before(to)) || (subject != "" && e.Subject != subject) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return n, err
			}
			if err := h(ctx, e); err != nil {
				return n, fmt.Errorf("audit: replay: event %s (record %d): %w", e.ID, r.Seq, err)
			}
			n++
		}
		if len(recs) < page {
			return n, nil
		}
	}
}

// Handler returns an events.HandlerFunc that appends every event it is
// given; redeliveries are skipped by event id.
func (c *Chain) Handler() events.HandlerFunc {
	return func(ctx context.Context, e events.Event) error {
		_, _, err := c.Append(ctx, e)
		return err
	}
}

// Problem says what is wrong with the first record that fails verification.
type Problem string

// The problems Verify reports.
const (
	// ProblemMissing: the record's sequence number skips one or more
	// records (a record was deleted), or the chain starts after 1.
	ProblemMissing Problem = "missing"
	// ProblemBrokenLink: the record's PrevHash is not the previous record's
	// hash (records were removed, reordered or re-chained).
	ProblemBrokenLink Problem = "broken link"
	// ProblemTampered: the record's hash does not match its content (the
	// event or the hash was changed).
	ProblemTampered Problem = "tampered"
	// ProblemDuplicate: the record holds an event an earlier record holds.
	ProblemDuplicate Problem = "duplicate event"
)

// Report is the result of Verify.
type Report struct {
	// Records is the number of records checked.
	Records int64
	// OK is true when every record checks out.
	OK bool
	// FirstBad is the sequence number the first bad record should have had
	// (for ProblemMissing, the first missing one); zero when OK.
	FirstBad int64
	// Problem says what is wrong there.
	Problem Problem
	// Detail explains it with the values involved.
	Detail string
	// Head is the hash of the last good record.
	Head Hash
}

// Verify walks the whole chain from the first record and returns where it
// first breaks. An error is returned only when the store cannot be read.
func (c *Chain) Verify(ctx context.Context) (Report, error) {
	const page = 500
	var rep Report
	var prev Hash
	want := int64(1)
	seen := map[string]int64{}
	for {
		recs, err := c.store.Range(ctx, want, page)
		if err != nil {
			return Report{}, fmt.Errorf("audit: read records from %d: %w", want, err)
		}
		for _, r := range recs {
			bad := func(p Problem, format string, args ...any) (Report, error) {
				rep.FirstBad, rep.Problem, rep.Detail = want, p, fmt.Sprintf(format, args...)
				return rep, nil
			}
			if r.Seq != want {
				return bad(ProblemMissing, "record %d is followed by record %d", want-1, r.Seq)
			}
			if r.PrevHash != prev {
				return bad(ProblemBrokenLink, "record %d links to %s, the previous record's hash is %s", r.Seq, r.PrevHash, prev)
			}
			h, err := HashRecord(prev, r.Event)
			if err != nil || h != r.Hash {
				return bad(ProblemTampered, "record %d (event %s) hashes to %s, stored hash is %s", r.Seq, r.Event.ID, h, r.Hash)
			}
			if first, dup := seen[r.Event.ID]; dup {
				return bad(ProblemDuplicate, "record %d repeats event %s of record %d", r.Seq, r.Event.ID, first)
			}
			seen[r.Event.ID] = r.Seq
			prev = r.Hash
			rep.Records++
			rep.Head = prev
			want++
		}
		if len(recs) < page {
			break
		}
	}
	rep.OK = true
	return rep, nil
}

// MemStore is an in-memory Store.
type MemStore struct {
	mu      sync.RWMutex
	records []Record
	ids     map[string]bool
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{ids: map[string]bool{}} }

// Append implements Store.
func (m *MemStore) Append(ctx context.Context, r Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if want := int64(len(m.records)) + 1; r.Seq != want {
		return fmt.Errorf("%w: record %d, next is %d", ErrConflict, r.Seq, want)
	}
	m.records = append(m.records, r)
	m.ids[r.Event.ID] = true
	return nil
}

// Last implements Store.
func (m *MemStore) Last(ctx context.Context) (Record, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if len(m.records) == 0 {
		return Record{}, false, nil
	}
	return m.records[len(m.records)-1], true, nil
}

// HasEvent implements Store.
func (m *MemStore) HasEvent(ctx context.Context, id string) (bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.ids[id], nil
}

// Range implements Store. It returns the stored records whose Seq is at
// least from, in storage order.
func (m *MemStore) Range(ctx context.Context, from int64, limit int) ([]Record, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Record
	for _, r := range m.records {
		if r.Seq >= from && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

// Tamper gives tests and drills direct access to the stored records,
// bypassing the append-only rule: fn may change, drop or reorder them.
func (m *MemStore) Tamper(fn func(records []Record) []Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records = fn(m.records)
	m.ids = map[string]bool{}
	for _, r := range m.records {
		m.ids[r.Event.ID] = true
	}
}
