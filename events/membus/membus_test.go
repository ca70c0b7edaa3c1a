package membus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/bustest"
	"github.com/cosmic-horizons/horizons/events/membus"
)

func msg(id string) *message.Message { return message.NewMessage(id, []byte(id)) }

func recv(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10 s")
	}
	return nil
}

func TestPublishWaitsForAckAndKeepsOrder(t *testing.T) {
	tr := membus.New(nil)
	defer tr.Close()
	ch, err := tr.Subscribe(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	errc := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := tr.Publish("t", msg(fmt.Sprint(i))); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := 0; i < n; i++ {
		m := recv(t, ch)
		if m.UUID != fmt.Sprint(i) {
			t.Fatalf("message %d is %s", i, m.UUID)
		}
		if i%7 == 3 { // a nack redelivers the same message before the next one
			m.Nack()
			m = recv(t, ch)
			if m.UUID != fmt.Sprint(i) {
				t.Fatalf("after nack of %d got %s", i, m.UUID)
			}
		}
		m.Ack()
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestPublishTimeoutWithStuckSubscriber(t *testing.T) {
	tr := membus.New(&membus.Config{PublishTimeout: 50 * time.Millisecond, MaxPending: 3})
	defer tr.Close()
	ch, _ := tr.Subscribe(context.Background(), "t")

	err := tr.Publish("t", msg("a"))
	if !errors.Is(err, membus.ErrPublishTimeout) {
		t.Fatalf("Publish to a subscriber that never reads = %v, want ErrPublishTimeout", err)
	}
	// "b" and "c" wait behind "a"; they time out too but stay queued.
	for _, id := range []string{"b", "c"} {
		if err := tr.Publish("t", msg(id)); !errors.Is(err, membus.ErrPublishTimeout) {
			t.Fatalf("Publish(%s) = %v, want ErrPublishTimeout", id, err)
		}
	}
	// The queue holds MaxPending = 3 messages: the fourth is refused.
	if err := tr.Publish("t", msg("d")); !errors.Is(err, membus.ErrQueueFull) {
		t.Fatalf("Publish beyond MaxPending = %v, want ErrQueueFull", err)
	}
	// The subscriber catches up: every queued message arrives, in order.
	for _, want := range []string{"a", "b", "c"} {
		m := recv(t, ch)
		if m.UUID != want {
			t.Fatalf("delivery %s, want %s", m.UUID, want)
		}
		m.Ack()
	}
	done := make(chan error, 1)
	go func() { done <- tr.Publish("t", msg("e")) }()
	if m := recv(t, ch); m.UUID != "e" {
		t.Fatalf("delivery %s, want e (d was refused)", m.UUID)
	} else {
		m.Ack()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPublishHonoursMessageContext(t *testing.T) {
	tr := membus.New(&membus.Config{PublishTimeout: -1})
	defer tr.Close()
	_, _ = tr.Subscribe(context.Background(), "t")
	ctx, cancel := context.WithCancel(context.Background())
	m := msg("a")
	m.SetContext(ctx)
	done := make(chan error, 1)
	go func() { done <- tr.Publish("t", m) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Publish = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Publish ignored the cancelled context")
	}
}

func TestCloseReleasesBlockedPublisher(t *testing.T) {
	tr := membus.New(&membus.Config{PublishTimeout: -1})
	_, _ = tr.Subscribe(context.Background(), "t")
	done := make(chan error, 1)
	go func() { done <- tr.Publish("t", msg("a")) }()
	time.Sleep(10 * time.Millisecond) // let the publish reach the subscriber; the test holds either way
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, events.ErrClosed) {
			t.Fatalf("Publish = %v, want an error wrapping events.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not release the blocked publisher")
	}
	if err := tr.Publish("t", msg("b")); !errors.Is(err, membus.ErrClosed) {
		t.Fatalf("Publish after Close = %v", err)
	}
	if _, err := tr.Subscribe(context.Background(), "t"); !errors.Is(err, events.ErrClosed) {
		t.Fatalf("Subscribe after Close = %v", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestNoSubscriberDropsUnlessPersistent(t *testing.T) {
	for _, persistent := range []bool{false, true} {
		tr := membus.New(&membus.Config{Persistent: persistent})
		if err := tr.Publish("t", msg("early")); err != nil {
			t.Fatal(err)
		}
		ch, _ := tr.Subscribe(context.Background(), "t")
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); _ = tr.Publish("t", msg("late")) }()
		got := recv(t, ch)
		got.Ack()
		want := "late"
		if persistent {
			// Replay and the live message may interleave; both must come.
			second := recv(t, ch)
			second.Ack()
			if !(got.UUID == "early" && second.UUID == "late" || got.UUID == "late" && second.UUID == "early") {
				t.Fatalf("persistent: got %s, %s", got.UUID, second.UUID)
			}
		} else if got.UUID != want {
			t.Fatalf("not persistent: got %s, want %s", got.UUID, want)
		}
		wg.Wait()
		tr.Close()
	}
}

func TestNewBus(t *testing.T) {
	bus := membus.NewBus(nil)
	defer bus.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := bus.Subscribe(ctx, events.TopicJobs)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := events.New(events.JobSubmitted, "job-1", events.JobData{JobID: "job-1", Owner: "o", Agent: "imaging", DatasetID: "d", GPUs: 1, State: "SUBMITTED"})
	e.Sequence = 1
	done := make(chan error, 1)
	go func() { done <- bus.Publish(ctx, events.TopicJobs, e) }()
	select {
	case d := <-sub:
		if d.Event.ID != e.ID {
			t.Fatalf("got %s", d.Event.ID)
		}
		d.Ack()
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// BenchmarkThroughput compares raw watermill on the same GoChannel settings
// with the SDK path. Run: go test -run '^$' -bench Throughput ./events/membus/
func BenchmarkThroughput(b *testing.B) {
	bustest.Bench(b, func(b *testing.B) (message.Publisher, message.Subscriber) {
		tr := membus.New(nil)
		return tr, tr
	}, 1)
}

func TestParseURL(t *testing.T) {
	cfg, err := membus.ParseURL("mem://?publish_timeout=2s&max_pending=50&persistent=true", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PublishTimeout != 2*time.Second || cfg.MaxPending != 50 || !cfg.Persistent {
		t.Fatalf("config %+v", cfg)
	}
	if cfg, err := membus.ParseURL("mem://", nil); err != nil || *cfg != (membus.Config{}) {
		t.Fatalf("mem:// = %+v, %v", cfg, err)
	}
	bad := map[string]string{
		"kafka://h:1":                  `scheme is "kafka"`,
		"mem://host":                   "host or path",
		"mem://?publish_timeout=later": `publish_timeout="later"`,
		"mem://?max_pending=-3":        `max_pending="-3"`,
		"mem://?persistent=maybe":      `persistent="maybe"`,
		"mem://?shards=4":              `"shards"`,
	}
	for raw, want := range bad {
		if _, err := membus.ParseURL(raw, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseURL(%q) = %v, want an error mentioning %s", raw, err, want)
		}
	}
	bus, err := membus.OpenURL("mem://", nil)
	if err != nil {
		t.Fatal(err)
	}
	bus.Close()
}

func TestLoggerDemotesRoutineInfo(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return buf.Write(p) })
	tr := membus.New(&membus.Config{Logger: slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err := tr.Publish("nobody-listens", msg("a")); err != nil {
		t.Fatal(err)
	}
	tr.Close()
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(buf.String(), "No subscribers") {
		t.Fatalf("routine GoChannel message logged at Info: %s", buf.String())
	}
	var dbg strings.Builder
	tr = membus.New(&membus.Config{Logger: slog.New(slog.NewTextHandler(&dbg, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	_ = tr.Publish("nobody-listens", msg("b"))
	tr.Close()
	if !strings.Contains(dbg.String(), "No subscribers") || !strings.Contains(dbg.String(), "level=DEBUG") {
		t.Fatalf("the message should be logged at Debug: %s", dbg.String())
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
