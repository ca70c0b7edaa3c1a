package events_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/membus"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// routerRig runs a router over one membus transport, with dead letters on
// the same transport.
type routerRig struct {
	tr   *membus.Transport
	bus  *events.Bus
	dead <-chan *message.Message
}

func newRouterRig(t *testing.T, cfg events.RouterConfig, h events.HandlerFunc) *routerRig {
	t.Helper()
	tr := membus.New(&membus.Config{PublishTimeout: -1})
	ctx, cancel := context.WithCancel(context.Background())
	dead, err := tr.Subscribe(ctx, events.DefaultDeadLetterTopic)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DeadLetters = tr
	cfg.Logger = quiet()
	r, err := events.NewRouter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.AddConsumerHandler("audit", events.TopicJobs, tr, h.Watermill(nil))
	go func() { _ = r.Run(ctx) }()
	<-r.Running()
	t.Cleanup(func() {
		cancel()
		_ = r.Close()
		_ = tr.Close()
	})
	return &routerRig{tr: tr, bus: events.NewBus(tr, tr, nil), dead: dead}
}

// publish publishes in the background (membus waits for the handler's ack)
// and returns the result channel.
func (r *routerRig) publish(t *testing.T, evs ...events.Event) <-chan error {
	done := make(chan error, 1)
	go func() { done <- r.bus.Publish(context.Background(), events.TopicJobs, evs...) }()
	return done
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

var fast = events.RouterConfig{MaxRetries: 3, InitialInterval: time.Millisecond, MaxInterval: 4 * time.Millisecond}

func TestRouterRetriesThenSucceeds(t *testing.T) {
	var attempts atomic.Int32
	handled := make(chan events.Event, 1)
	rig := newRouterRig(t, fast, func(ctx context.Context, e events.Event) error {
		if attempts.Add(1) < 3 {
			return errors.New("store unavailable")
		}
		handled <- e
		return nil
	})
	e := newEvent(t, events.JobQueued, "job-1", "QUEUED", 2)
	done := rig.publish(t, e)
	got := wait(t, handled, "the third attempt")
	if got.ID != e.ID || got.Sequence != 2 || got.CorrelationID != e.CorrelationID {
		t.Fatalf("handler got %+v", got)
	}
	if err := wait(t, done, "publish"); err != nil {
		t.Fatal(err)
	}
	if n := attempts.Load(); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
	select {
	case m := <-rig.dead:
		t.Fatalf("dead letter %s for a message that succeeded", m.UUID)
	default:
	}
}

func TestRouterDeadLettersAfterRetries(t *testing.T) {
	var attempts atomic.Int32
	rig := newRouterRig(t, fast, func(ctx context.Context, e events.Event) error {
		attempts.Add(1)
		return fmt.Errorf("disk full on attempt %d", attempts.Load())
	})
	e := newEvent(t, events.JobFailed, "job-5", "FAILED", 4)
	done := rig.publish(t, e)
	dl := wait(t, rig.dead, "the dead letter")
	dl.Ack()
	if err := wait(t, done, "publish"); err != nil {
		t.Fatalf("the original publish: %v (a dead-lettered message is acked)", err)
	}
	want := map[string]string{
		events.MetaDeadLetterReason:  "disk full on attempt 4",
		events.MetaDeadLetterTopic:   events.TopicJobs,
		events.MetaDeadLetterHandler: "audit",
		events.MetaAttempts:          "4",
		events.MetaEventID:           e.ID,
		events.MetaEventType:         "job.failed",
		events.MetaCorrelationID:     e.CorrelationID,
	}
	for k, v := range want {
		if got := dl.Metadata.Get(k); got != v {
			t.Errorf("dead letter metadata %s = %q, want %q", k, got, v)
		}
	}
	back, err := events.JSONCodec{}.Unmarshal(dl)
	if err != nil || back.ID != e.ID {
		t.Fatalf("dead letter payload: %v, %+v", err, back)
	}
	if n := attempts.Load(); n != 4 {
		t.Fatalf("%d attempts, want 1 + 3 retries", n)
	}
}

func TestRouterPermanentPanicAndUndecodable(t *testing.T) {
	var attempts atomic.Int32
	rig := newRouterRig(t, fast, func(ctx context.Context, e events.Event) error {
		attempts.Add(1)
		switch e.Subject {
		case "job-perm":
			return fmt.Errorf("bad parameters: %w", events.ErrPermanent)
		case "job-panic":
			panic("nil map in consumer")
		}
		return nil
	})

	check := func(name, wantReason string, wantAttempts string) {
		t.Helper()
		dl := wait(t, rig.dead, name)
		dl.Ack()
		if r := dl.Metadata.Get(events.MetaDeadLetterReason); !strings.Contains(r, wantReason) {
			t.Errorf("%s: reason %q, want it to mention %q", name, r, wantReason)
		}
		if a := dl.Metadata.Get(events.MetaAttempts); a != wantAttempts {
			t.Errorf("%s: attempts %s, want %s", name, a, wantAttempts)
		}
	}

	done := rig.publish(t, newEvent(t, events.JobQueued, "job-perm", "QUEUED", 1))
	check("permanent failure", "bad parameters", "1")
	wait(t, done, "publish")

	done = rig.publish(t, newEvent(t, events.JobQueued, "job-panic", "QUEUED", 1))
	check("panic", "nil map in consumer", "4")
	wait(t, done, "publish")

	before := attempts.Load()
	errc := make(chan error, 1)
	go func() { errc <- rig.tr.Publish(events.TopicJobs, message.NewMessage("garbage-1", []byte("{not json"))) }()
	check("undecodable message", "cannot decode", "1")
	wait(t, errc, "publish")
	if attempts.Load() != before {
		t.Fatal("the handler ran for an undecodable message")
	}
}

func TestRouterTimeoutGivesEachAttemptAFreshContext(t *testing.T) {
	var attempts atomic.Int32
	handled := make(chan error, 2)
	cfg := fast
	cfg.HandlerTimeout = 20 * time.Millisecond
	rig := newRouterRig(t, cfg, func(ctx context.Context, e events.Event) error {
		if attempts.Add(1) == 1 {
			<-ctx.Done() // a hung call that only the timeout ends
			handled <- ctx.Err()
			return ctx.Err()
		}
		handled <- ctx.Err()
		return nil
	})
	done := rig.publish(t, newEvent(t, events.JobQueued, "job-1", "QUEUED", 1))
	if err := wait(t, handled, "first attempt"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first attempt ended with %v, want DeadlineExceeded", err)
	}
	if err := wait(t, handled, "second attempt"); err != nil {
		t.Fatalf("second attempt started with a done context: %v", err)
	}
	if err := wait(t, done, "publish"); err != nil {
		t.Fatal(err)
	}
}

func TestRouterCorrelationIDOnProducedMessages(t *testing.T) {
	tr := membus.New(&membus.Config{PublishTimeout: -1})
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, _ := tr.Subscribe(ctx, "notifications")
	r, err := events.NewRouter(events.RouterConfig{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	r.AddHandler("fanout", events.TopicJobs, tr, "notifications", tr, func(m *message.Message) ([]*message.Message, error) {
		return []*message.Message{message.NewMessage("n-"+m.UUID, []byte("hello"))}, nil
	})
	go func() { _ = r.Run(ctx) }()
	<-r.Running()
	defer r.Close()
	bus := events.NewBus(tr, tr, nil)
	e := newEvent(t, events.JobCompleted, "job-3", "COMPLETED", 9)
	go func() { _ = bus.Publish(ctx, events.TopicJobs, e) }()
	n := wait(t, out, "the produced message")
	n.Ack()
	if got := n.Metadata.Get(events.MetaCorrelationID); got != "corr-job-3" {
		t.Fatalf("produced message correlation id %q, want corr-job-3", got)
	}
}

func TestRouterConfigValidation(t *testing.T) {
	cases := map[string]events.RouterConfig{
		"Multiplier":      {Multiplier: 0.5},
		"Jitter":          {Jitter: 1.5},
		"MaxInterval":     {InitialInterval: time.Minute, MaxInterval: time.Second},
		"InitialInterval": {InitialInterval: -time.Second},
	}
	for field, cfg := range cases {
		_, err := events.NewRouter(cfg)
		if err == nil || !strings.Contains(err.Error(), "RouterConfig."+field) {
			t.Errorf("%s: NewRouter = %v, want an error naming the field", field, err)
		}
	}
	if _, err := events.NewRouter(events.RouterConfig{}); err != nil {
		t.Fatalf("zero config: %v", err)
	}
}

func TestDeduplicatorWindow(t *testing.T) {
	d := events.NewDeduplicator(3)
	for _, id := range []string{"a", "b", "c"} {
		if !d.Mark(id) {
			t.Fatalf("Mark(%s) reported a duplicate", id)
		}
	}
	if d.Mark("b") {
		t.Fatal("Mark(b) twice reported new")
	}
	d.Mark("d") // evicts a, the oldest
	if d.Seen("a") || !d.Seen("b") || !d.Seen("c") || !d.Seen("d") || d.Len() != 3 {
		t.Fatalf("after eviction: a=%v b=%v c=%v d=%v len=%d", d.Seen("a"), d.Seen("b"), d.Seen("c"), d.Seen("d"), d.Len())
	}
	if events.NewDeduplicator(0).Mark("x") != true {
		t.Fatal("default-sized deduplicator")
	}
}

func TestDeduplicatorWrap(t *testing.T) {
	d := events.NewDeduplicator(10)
	var mu sync.Mutex
	applied := map[string]int{}
	fail := true
	h := d.Wrap(func(ctx context.Context, e events.Event) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			return errors.New("transient")
		}
		applied[e.ID]++
		return nil
	})
	e := newEvent(t, events.JobQueued, "job-1", "QUEUED", 1)
	if err := h(context.Background(), e); err == nil {
		t.Fatal("first attempt should fail")
	}
	if d.Seen(e.ID) {
		t.Fatal("a failed event was marked as seen")
	}
	for i := 0; i < 3; i++ { // the retry and two redeliveries
		if err := h(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if applied[e.ID] != 1 {
		t.Fatalf("applied %d times, want 1", applied[e.ID])
	}
}

func TestDeadLetterParseAndReplay(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	handled := make(chan events.Event, 1)
	rig := newRouterRig(t, events.RouterConfig{MaxRetries: -1}, func(ctx context.Context, e events.Event) error {
		if fail.Load() {
			return errors.New("audit store offline")
		}
		handled <- e
		return nil
	})
	e := newEvent(t, events.JobCancelled, "job-4", "CANCELLED", 6)
	done := rig.publish(t, e)
	raw := wait(t, rig.dead, "the dead letter")
	raw.Ack()
	wait(t, done, "publish")

	dl, err := events.ParseDeadLetter(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if dl.Reason != "audit store offline" || dl.Topic != events.TopicJobs || dl.Handler != "audit" ||
		dl.Attempts != 1 || dl.DecodeErr != nil || dl.Event.ID != e.ID || dl.Event.Sequence != 6 {
		t.Fatalf("parsed %+v", dl)
	}

	fail.Store(false) // the store is back: replay
	errc := make(chan error, 1)
	go func() { errc <- dl.Replay(rig.tr) }()
	got := wait(t, handled, "the replayed event")
	if err := wait(t, errc, "Replay"); err != nil {
		t.Fatal(err)
	}
	if got.ID != e.ID {
		t.Fatalf("replayed %s, want %s", got.ID, e.ID)
	}

	if _, err := events.ParseDeadLetter(message.NewMessage("x", []byte("{}")), nil); err == nil {
		t.Fatal("ParseDeadLetter accepted a message without dead-letter metadata")
	}
	bad := message.NewMessage("y", []byte("{"))
	bad.Metadata.Set(events.MetaDeadLetterReason, "r")
	bad.Metadata.Set(events.MetaDeadLetterTopic, "t")
	bad.Metadata.Set(events.MetaAttempts, "three")
	if _, err := events.ParseDeadLetter(bad, nil); err == nil || !strings.Contains(err.Error(), `"three"`) {
		t.Fatalf("bad attempts: %v", err)
	}
	bad.Metadata.Set(events.MetaAttempts, "1")
	if dl, err := events.ParseDeadLetter(bad, nil); err != nil || !errors.Is(dl.DecodeErr, events.ErrDecode) {
		t.Fatalf("undecodable dead letter: %v, %v", err, dl.DecodeErr)
	}
}

func TestRouterMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := fast
	cfg.MaxRetries = -1
	cfg.Metrics = reg
	rig := newRouterRig(t, cfg, func(ctx context.Context, e events.Event) error {
		if e.Type == events.JobFailed {
			return errors.New("no")
		}
		return nil
	})
	// A second router on the same registry reuses the collectors.
	if _, err := events.NewRouter(events.RouterConfig{Metrics: reg, Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []events.Event{
		newEvent(t, events.JobQueued, "job-1", "QUEUED", 1),
		newEvent(t, events.JobQueued, "job-2", "QUEUED", 1),
		newEvent(t, events.JobFailed, "job-1", "FAILED", 2),
	} {
		done := rig.publish(t, e)
		if e.Type == events.JobFailed {
			wait(t, rig.dead, "dead letter").Ack()
		}
		if err := wait(t, done, "publish"); err != nil {
			t.Fatal(err)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	var observations uint64
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch f.GetName() {
			case "horizons_events_handled_total":
				got[labels["handler"]+" "+labels["event_type"]+" "+labels["outcome"]] = m.GetCounter().GetValue()
			case "horizons_events_handler_seconds":
				observations += m.GetHistogram().GetSampleCount()
			}
		}
	}
	want := map[string]float64{"audit job.queued ok": 2, "audit job.failed dead_letter": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("handled_total %v, want %v", got, want)
	}
	if observations != 3 {
		t.Fatalf("handler_seconds has %d observations, want 3", observations)
	}
}

func TestRetryDelays(t *testing.T) {
	cases := []struct {
		cfg  events.RouterConfig
		want string
	}{
		{events.RouterConfig{}, "[1s 2s 4s 8s 16s]"},
		{events.RouterConfig{MaxRetries: 7}, "[1s 2s 4s 8s 16s 30s 30s]"},
		{events.RouterConfig{MaxRetries: 4, InitialInterval: 100 * time.Millisecond, Multiplier: 3, MaxInterval: time.Second},
			"[100ms 300ms 900ms 1s]"},
		{events.RouterConfig{MaxRetries: -1}, "[]"},
	}
	for _, tc := range cases {
		got, err := tc.cfg.RetryDelays()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != tc.want {
			t.Errorf("RetryDelays(%+v) = %v, want %s", tc.cfg, got, tc.want)
		}
	}
	if _, err := (events.RouterConfig{Multiplier: 0.5}).RetryDelays(); err == nil {
		t.Error("RetryDelays accepted Multiplier 0.5")
	}
}

// Each consumer can have its own number of attempts: the handler named in
// MaxRetriesByHandler gets that many retries, others keep MaxRetries.
func TestRouterMaxRetriesByHandler(t *testing.T) {
	for _, tc := range []struct {
		byHandler map[string]int
		want      int32
	}{
		{map[string]int{"audit": 1}, 2},
		{map[string]int{"audit": -1}, 1},
		{map[string]int{"metrics": 1}, 4},
	} {
		var attempts atomic.Int32
		cfg := fast
		cfg.MaxRetriesByHandler = tc.byHandler
		rig := newRouterRig(t, cfg, func(ctx context.Context, e events.Event) error {
			attempts.Add(1)
			return errors.New("store down")
		})
		done := rig.publish(t, newEvent(t, events.JobFailed, "job-9", "FAILED", 2))
		dl := wait(t, rig.dead, "the dead letter")
		dl.Ack()
		_ = wait(t, done, "publish")
		if n := attempts.Load(); n != tc.want || dl.Metadata.Get(events.MetaAttempts) != fmt.Sprint(tc.want) {
			t.Errorf("%v: %d attempts (metadata %s), want %d", tc.byHandler, n, dl.Metadata.Get(events.MetaAttempts), tc.want)
		}
	}
}
