package audit_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/audit"
	"github.com/cosmic-horizons/horizons/events/bustest"
)

var ctx = context.Background()

func chainOf(t *testing.T, n int) (*audit.Chain, *audit.MemStore, []events.Event) {
	t.Helper()
	store := audit.NewMemStore()
	c := audit.New(store)
	var evs []events.Event
	for i := 1; i <= n; i++ {
		e := bustest.JobEvent(t, events.JobProgress, fmt.Sprintf("job-%d", i%3), int64(i))
		if _, appended, err := c.Append(ctx, e); err != nil || !appended {
			t.Fatalf("append %d: %v %v", i, appended, err)
		}
		evs = append(evs, e)
	}
	return c, store, evs
}

func TestCanonicalAndHashKnownAnswer(t *testing.T) {
	e := events.Event{
		ID: "a", Type: "job.queued", Source: "s", Subject: "job-1",
		Time:          time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", 3600)),
		SchemaVersion: "1.0", CorrelationID: "c", Sequence: 12,
		Data: json.RawMessage("{ \"x\" : 1 }"),
	}
	// Built by hand: length-prefixed fields.
	var want []byte
	for _, f := range []string{"a", "job.queued", "s", "job-1", "2026-01-02T03:04:05.000000006+01:00", "1.0", "c", "12", `{"x":1}`} {
		want = append(want, byte(len(f)>>24), byte(len(f)>>16), byte(len(f)>>8), byte(len(f)))
		want = append(want, f...)
	}
	got, err := audit.Canonical(e)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("Canonical\n got %q\nwant %q", got, want)
	}
	var prev audit.Hash
	prev[0] = 0xab
	sum := sha256.Sum256(append(prev[:], want...))
	h, err := audit.HashRecord(prev, e)
	if err != nil {
		t.Fatal(err)
	}
	if h != audit.Hash(sum) {
		t.Fatalf("HashRecord = %s, want %x", h, sum)
	}
	e.Data = json.RawMessage("{")
	if _, err := audit.Canonical(e); err == nil {
		t.Fatal("Canonical accepted a payload that is not JSON")
	}
}

func TestAppendIsIdempotentAndLinked(t *testing.T) {
	c, store, evs := chainOf(t, 5)
	rec, appended, err := c.Append(ctx, evs[2]) // a redelivery
	if err != nil || appended || rec.Seq != 0 {
		t.Fatalf("redelivered event: %+v %v %v", rec, appended, err)
	}
	recs, _ := store.Range(ctx, 1, 100)
	if len(recs) != 5 {
		t.Fatalf("%d records, want 5", len(recs))
	}
	var prev audit.Hash
	for i, r := range recs {
		if r.Seq != int64(i+1) || r.PrevHash != prev || r.Event.ID != evs[i].ID {
			t.Fatalf("record %d: seq %d prev %s event %s", i+1, r.Seq, r.PrevHash, r.Event.ID)
		}
		prev = r.Hash
	}
	rep, err := c.Verify(ctx)
	if err != nil || !rep.OK || rep.Records != 5 || rep.Head != recs[4].Hash {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	if _, _, err := c.Append(ctx, events.Event{}); err == nil {
		t.Fatal("Append accepted an event without id")
	}
	if err := store.Append(ctx, audit.Record{Seq: 9}); err == nil || !strings.Contains(err.Error(), "record 9, next is 6") {
		t.Fatalf("out-of-sequence append: %v", err)
	}
}

func TestVerifyPinpointsTampering(t *testing.T) {
	cases := []struct {
		name    string
		tamper  func(rs []audit.Record) []audit.Record
		problem audit.Problem
		first   int64
	}{
		{"payload edited", func(rs []audit.Record) []audit.Record {
			rs[3].Event.Data = json.RawMessage(strings.Replace(string(rs[3].Event.Data), `"gpus":3`, `"gpus":1`, 1))
			return rs
		}, audit.ProblemTampered, 4},
		{"time edited", func(rs []audit.Record) []audit.Record {
			rs[6].Event.Time = rs[6].Event.Time.Add(time.Second)
			return rs
		}, audit.ProblemTampered, 7},
		{"record deleted", func(rs []audit.Record) []audit.Record {
			return append(rs[:5:5], rs[6:]...)
		}, audit.ProblemMissing, 6},
		{"first record deleted", func(rs []audit.Record) []audit.Record {
			return append(rs[:0:0], rs[1:]...)
		}, audit.ProblemMissing, 1},
		{"records swapped", func(rs []audit.Record) []audit.Record {
			rs[2], rs[3] = rs[3], rs[2]
			return rs
		}, audit.ProblemMissing, 3},
		{"edited and re-hashed", func(rs []audit.Record) []audit.Record {
			rs[4].Event.Subject = "job-other"
			rs[4].Hash, _ = audit.HashRecord(rs[4].PrevHash, rs[4].Event)
			return rs
		}, audit.ProblemBrokenLink, 6},
		{"renumbered after a deletion", func(rs []audit.Record) []audit.Record {
			rs = append(rs[:2:2], rs[3:]...)
			for i := range rs {
				rs[i].Seq = int64(i + 1)
			}
			return rs
		}, audit.ProblemBrokenLink, 3},
		{"head hash replaced", func(rs []audit.Record) []audit.Record {
			rs[9].Hash[0] ^= 1
			return rs
		}, audit.ProblemTampered, 10},
		{"event duplicated and re-chained", func(rs []audit.Record) []audit.Record {
			dup := rs[9]
			dup.Event = rs[1].Event
			dup.Seq, dup.PrevHash = 11, rs[9].Hash
			dup.Hash, _ = audit.HashRecord(dup.PrevHash, dup.Event)
			return append(rs, dup)
		}, audit.ProblemDuplicate, 11},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, store, _ := chainOf(t, 10)
			store.Tamper(tc.tamper)
			rep, err := c.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK || rep.Problem != tc.problem || rep.FirstBad != tc.first || rep.Detail == "" {
				t.Fatalf("Verify = %+v, want %s at %d", rep, tc.problem, tc.first)
			}
			if rep.Records != tc.first-1 {
				t.Errorf("%d records checked before the bad one, want %d", rep.Records, tc.first-1)
			}
		})
	}
}

func TestVerifyPagesThroughLongChains(t *testing.T) {
	c, store, _ := chainOf(t, 1203)
	if rep, err := c.Verify(ctx); err != nil || !rep.OK || rep.Records != 1203 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	store.Tamper(func(rs []audit.Record) []audit.Record {
		rs[1100].Event.CorrelationID = "forged"
		return rs
	})
	if rep, _ := c.Verify(ctx); rep.OK || rep.FirstBad != 1101 || rep.Problem != audit.ProblemTampered {
		t.Fatalf("Verify after tampering record 1101 = %+v", rep)
	}
}
