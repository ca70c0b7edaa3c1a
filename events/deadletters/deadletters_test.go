package deadletters_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	_ "modernc.org/sqlite"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/bustest"
	"github.com/cosmic-horizons/horizons/events/deadletters"
	"github.com/cosmic-horizons/horizons/events/membus"
)

func openBox(t *testing.T) *deadletters.Box {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "dl.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	b, err := deadletters.New(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A handler that fails every attempt has its message dead-lettered with the
// reason, attempts and origin; the Box stores it once, lists and shows it,
// and a replay reaches the handler again, which now succeeds.
func TestDeadLetterStoredListedAndReplayed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	box := openBox(t)
	tr := membus.New(nil)
	defer tr.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := events.NewRouter(events.RouterConfig{
		MaxRetries: 2, InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond,
		DeadLetters: tr, Logger: quiet, CloseTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	var healed atomic.Bool
	var applied atomic.Int32
	r.AddConsumerHandler("audit", events.TopicJobs, tr, events.HandlerFunc(func(ctx context.Context, e events.Event) error {
		if !healed.Load() {
			return errors.New("audit store down")
		}
		applied.Add(1)
		return nil
	}).Watermill(nil))
	stored := make(chan string, 4)
	r.AddConsumerHandler("deadletters", events.DefaultDeadLetterTopic, tr, func(msg *message.Message) error {
		id, added, err := box.Add(msg.Context(), msg)
		if err == nil && added {
			stored <- id
		}
		return err
	})
	go func() { _ = r.Run(ctx) }()
	<-r.Running()
	defer r.Close()

	e := bustest.JobEvent(t, events.JobCompleted, "job-7", 3)
	bus := events.NewBus(tr, nil, nil)
	if err := bus.Publish(ctx, events.TopicJobs, e); err != nil {
		t.Fatal(err)
	}
	var id string
	select {
	case id = <-stored:
	case <-ctx.Done():
		t.Fatal("no dead letter stored")
	}
	ls, err := box.List(ctx, deadletters.ListQuery{Subject: "job-7"})
	if err != nil || len(ls) != 1 {
		t.Fatalf("list: %v %+v", err, ls)
	}
	l := ls[0]
	if l.ID != id || l.EventID != e.ID || l.Topic != events.TopicJobs || l.Handler != "audit" || l.Attempts != 3 ||
		l.Reason != "audit store down" || l.Payload != nil || l.Event == nil || l.Event.Sequence != 3 {
		t.Fatalf("listed %+v", l)
	}
	if other, _ := box.List(ctx, deadletters.ListQuery{Handler: "metrics"}); len(other) != 0 {
		t.Fatalf("handler filter let through %+v", other)
	}
	full, err := box.Get(ctx, id)
	if err != nil || len(full.Payload) == 0 || full.Metadata[events.MetaDeadLetterID] != id {
		t.Fatalf("get: %v %+v", err, full)
	}
	// Stored once however often the transport delivers it.
	msg := message.NewMessage(full.MessageUUID, full.Payload)
	for k, v := range full.Metadata {
		msg.Metadata.Set(k, v)
	}
	if _, added, err := box.Add(ctx, msg); err != nil || added {
		t.Fatalf("redelivered dead letter: added %v, err %v", added, err)
	}
	if n, _ := box.Count(ctx); n != 1 {
		t.Fatalf("%d stored, want 1", n)
	}
	if _, _, err := box.Add(ctx, message.NewMessage("x", []byte("{}"))); !errors.Is(err, deadletters.ErrNotDeadLetter) {
		t.Fatalf("plain message: %v", err)
	}
	if _, err := box.Get(ctx, "nope"); !errors.Is(err, deadletters.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}

	healed.Store(true)
	rl, err := box.Replay(ctx, id, tr)
	if err != nil || rl.Replays != 1 || rl.LastReplayAt == nil {
		t.Fatalf("replay: %v %+v", err, rl)
	}
	if applied.Load() != 1 { // membus: Publish returns once the handlers acked
		t.Fatalf("replayed event applied %d times", applied.Load())
	}
	if again, _ := box.Get(ctx, id); again.Replays != 1 {
		t.Fatalf("replay not recorded: %+v", again)
	}
}

func TestConfigErrors(t *testing.T) {
	db, _ := sql.Open("sqlite", ":memory:")
	defer db.Close()
	for _, c := range []*deadletters.Config{{Dialect: "mysql"}, {Table: "bad name"}} {
		if _, err := deadletters.New(context.Background(), db, c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if _, err := deadletters.New(context.Background(), nil, nil); err == nil {
		t.Error("nil db accepted")
	}
}
