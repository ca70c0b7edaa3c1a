package notify_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/notify"
)

func jobEvent(t *testing.T, typ events.Type, owner string) events.Event {
	t.Helper()
	e, err := events.New(typ, "job-1", events.JobData{JobID: "job-1", Owner: owner, Agent: "alphacal", DatasetID: "d", State: "RUNNING"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestConsumerPassesEachEventOnceToItsOwner(t *testing.T) {
	type call struct {
		owner string
		id    string
	}
	var calls []call
	fail := true
	c, err := notify.New(notify.NotifierFunc(func(ctx context.Context, owner string, ev events.Event) error {
		if ev.Type == events.JobFailed && fail {
			fail = false
			return errors.New("hub busy")
		}
		calls = append(calls, call{owner, ev.ID})
		return nil
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := jobEvent(t, events.JobRunning, "alice")
	b := jobEvent(t, events.JobFailed, "bob")
	for _, e := range []events.Event{a, a} { // a redelivery
		if err := c.Handle(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	// A failed notification is an error (the router retries it) and is
	// not remembered as done.
	if err := c.Handle(context.Background(), b); err == nil {
		t.Fatal("a notifier error was swallowed")
	}
	if err := c.Handle(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	want := []call{{"alice", a.ID}, {"bob", b.ID}}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
}

func TestConsumerTypeFilterAndErrors(t *testing.T) {
	if _, err := notify.New(nil, nil); err == nil {
		t.Fatal("nil notifier accepted")
	}
	n := 0
	c, _ := notify.New(notify.NotifierFunc(func(context.Context, string, events.Event) error { n++; return nil }),
		&notify.Config{Types: []events.Type{events.JobCompleted}})
	_ = c.Handle(context.Background(), jobEvent(t, events.JobRunning, "alice"))
	if n != 0 {
		t.Fatalf("filtered type notified %d times", n)
	}
	e := jobEvent(t, events.JobCompleted, "alice")
	_ = c.Handler()(context.Background(), e)
	if n != 1 || notify.Owner(e) != "alice" || notify.Owner(events.Event{Data: []byte("nope")}) != "" {
		t.Fatalf("n = %d, owner %q", n, notify.Owner(e))
	}
}
