package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/membus"
)

func queuedEvent(t *testing.T, job, owner string, seq int64) events.Event {
	t.Helper()
	e, err := events.New(events.JobQueued, job, events.JobData{JobID: job, Owner: owner, Agent: "alphacal", DatasetID: "d", State: "QUEUED"})
	if err != nil {
		t.Fatal(err)
	}
	e.Sequence = seq
	e.CorrelationID = "c-" + job
	return e
}

// reader reads a client's messages as they come, like a fast connection.
type reader struct {
	c   *client
	out chan *streamMsg
}

func read(c *client) *reader {
	r := &reader{c: c, out: make(chan *streamMsg, 1000)}
	go func() {
		for {
			select {
			case m := <-c.ch:
				r.out <- m
			case <-c.gone:
				return
			}
		}
	}()
	return r
}

func recv(t *testing.T, r *reader) *streamMsg {
	t.Helper()
	select {
	case m := <-r.out:
		return m
	case <-r.c.gone:
		t.Fatalf("client dropped: %s", r.c.reason)
	case <-time.After(waitLimit):
		t.Fatal("no message")
	}
	return nil
}

// TestHubFanOut checks owner and job filtering, de-duplication of
// redelivered events, and that a client that does not read is dropped
// without holding up the others.
func TestHubFanOut(t *testing.T) {
	bus := membus.NewBus(nil)
	defer bus.Close()
	m := newMetrics()
	h := newHub(bus, events.TopicJobs, slog.New(slog.NewTextHandler(io.Discard, nil)), m, hubConfig{Buffer: 3})
	if err := h.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.stop()

	alice := &user{ID: "u-alice", Name: "alice", Role: roleUser}
	bob := &user{ID: "u-bob", Name: "bob", Role: roleUser}
	admin := &user{ID: "u-admin", Name: "admin", Role: roleAdmin}
	fastC, _ := h.register(alice, subscription{}, "ws", nil)
	slow, _ := h.register(alice, subscription{}, "sse", nil) // never reads
	onlyJob2C, _ := h.register(alice, subscription{Jobs: map[string]bool{"job-2": true}}, "ws", nil)
	otherC, _ := h.register(bob, subscription{}, "ws", nil)
	allC, _ := h.register(admin, subscription{}, "sse", nil)
	fast, onlyJob2, other, all := read(fastC), read(onlyJob2C), read(otherC), read(allC)
	if got := metricValue(t, m, "horizons_stream_clients", "transport", "ws"); got != 3 {
		t.Fatalf("ws clients gauge %v, want 3", got)
	}

	ctx := context.Background()
	// Each event is read by the reading clients before the next is
	// published, so only the client that never reads can overflow its
	// buffer of 3, however slowly the readers are scheduled.
	for i := int64(1); i <= 6; i++ {
		job := "job-1"
		if i%2 == 0 {
			job = "job-2"
		}
		want := queuedEvent(t, job, alice.ID, i)
		if err := bus.Publish(ctx, events.TopicJobs, want); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			// A redelivery of the same event is not forwarded twice: the
			// next message each client reads is event 3.
			if err := bus.Publish(ctx, events.TopicJobs, want); err != nil {
				t.Fatal(err)
			}
		}
		if got := recv(t, fast); got.ID != want.ID || got.Type != string(events.JobQueued) {
			t.Fatalf("fast client message %d = %s, want %s", i, got.ID, want.ID)
		}
		if got := recv(t, all); got.ID != want.ID {
			t.Fatalf("admin message %d = %s, want %s", i, got.ID, want.ID)
		}
		if job == "job-2" {
			if got := recv(t, onlyJob2); got.ID != want.ID {
				t.Fatalf("job filter got %s, want %s", got.ID, want.ID)
			}
		}
	}
	// The slow client's buffer of 3 overflowed at the 4th event.
	select {
	case <-slow.gone:
		if slow.reason != reasonSlow {
			t.Fatalf("slow client dropped for %q", slow.reason)
		}
	default:
		t.Fatal("slow client still connected after overflowing its buffer")
	}
	if got := metricValue(t, m, "horizons_stream_clients_dropped_total", "transport", "sse", "reason", "slow"); got != 1 {
		t.Fatalf("dropped counter %v, want 1", got)
	}
	if got := metricValue(t, m, "horizons_events_received_total", "type", "job.queued"); got != 6 {
		t.Fatalf("received counter %v, want 6 (the redelivery is not counted)", got)
	}
	// Bob received nothing of alice's: his first message is his own event,
	// published after all of hers.
	mine := queuedEvent(t, "job-9", bob.ID, 1)
	if err := bus.Publish(ctx, events.TopicJobs, mine); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, other); got.ID != mine.ID {
		t.Fatalf("bob's first message is %s (%s), want his own %s", got.ID, got.Subject, mine.ID)
	}
	// And alice none of bob's: her next message is her next event.
	next := queuedEvent(t, "job-1", alice.ID, 7)
	if err := bus.Publish(ctx, events.TopicJobs, next); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, fast); got.ID != next.ID {
		t.Fatalf("alice's next message is %s (%s), want %s", got.ID, got.Subject, next.ID)
	}

	h.closeClients()
	for _, c := range []*client{fastC, onlyJob2C, otherC, allC} {
		select {
		case <-c.gone:
			if c.reason != reasonShutdown {
				t.Errorf("client closed for %q", c.reason)
			}
		default:
			t.Error("client still open after closeClients")
		}
	}
	if _, err := h.register(alice, subscription{}, "ws", nil); err == nil {
		t.Error("register after closeClients succeeded")
	}
	if got := metricValue(t, m, "horizons_stream_clients", "transport", "ws") + metricValue(t, m, "horizons_stream_clients", "transport", "sse"); got != 0 {
		t.Errorf("client gauges sum to %v after close", got)
	}
	// The hub keeps acknowledging after its clients are gone, so the
	// orchestrator's last outbox sweep never blocks on it.
	done := make(chan error, 1)
	go func() { done <- bus.Publish(ctx, events.TopicJobs, queuedEvent(t, "job-10", bob.ID, 2)) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitLimit):
		t.Fatal("publish blocked on a hub without clients")
	}
}

// metricValue gathers m's registry and returns the counter or gauge
// called name whose labels hold the given name/value pairs.
func metricValue(t *testing.T, m *metrics, name string, labelPairs ...string) float64 {
	t.Helper()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, mt := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range mt.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labelPairs); i += 2 {
				if have[labelPairs[i]] != labelPairs[i+1] {
					continue metric
				}
			}
			if c := mt.GetCounter(); c != nil {
				return c.GetValue()
			}
			return mt.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s%v", name, labelPairs)
	return 0
}
