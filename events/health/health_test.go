package health_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/health"
	"github.com/cosmic-horizons/horizons/events/membus"
)

func TestStatusFromProbeErrorsAndLag(t *testing.T) {
	var probeErr error
	lag := map[string]int64{}
	m := health.New(&health.Config{
		Transport: "kafka",
		Probe:     func(context.Context) error { return probeErr },
		Lag:       func(context.Context) (map[string]int64, error) { return lag, nil },
	})
	h := m.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		if msg.UUID == "bad" {
			return nil, errors.New("boom")
		}
		return nil, nil
	})
	ctx := context.Background()
	if r := m.Check(ctx); r.Status != health.Healthy || !r.Connected || r.Transport != "kafka" {
		t.Fatalf("fresh monitor: %+v", r)
	}
	for i := 0; i < 9; i++ {
		_, _ = h(message.NewMessage("ok", nil))
	}
	_, _ = h(message.NewMessage("bad", nil))
	m.DeadLetter()
	r := m.Check(ctx)
	if r.Status != health.Degraded || r.Handled != 9 || r.Failed != 1 || r.DeadLetters != 1 || r.ErrorRate != 0.1 {
		t.Fatalf("10%% errors: %+v", r)
	}
	// The rate is over the window since the previous report.
	if r := m.Check(ctx); r.Status != health.Healthy || r.ErrorRate != 0 {
		t.Fatalf("quiet window: %+v", r)
	}
	lag["horizons-audit"] = 5000
	if r := m.Check(ctx); r.Status != health.Degraded || r.Lag["horizons-audit"] != 5000 {
		t.Fatalf("lagging group: %+v", r)
	}
	probeErr = errors.New("dial tcp 127.0.0.1:9092: connection refused")
	if r := m.Check(ctx); r.Status != health.Unhealthy || r.Connected || r.Error == "" {
		t.Fatalf("unreachable: %+v", r)
	}
	if err := m.Ready(ctx); err == nil {
		t.Fatal("Ready with an unreachable transport")
	}
}

func TestPublishedReportIsAValidEvent(t *testing.T) {
	cat := &events.Catalogue{}
	health.Register(cat)
	bus := membus.NewBus(&membus.Config{Bus: &events.BusConfig{Catalogue: cat}})
	defer bus.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ds, err := bus.Subscribe(ctx, events.TopicHealth)
	if err != nil {
		t.Fatal(err)
	}
	m := health.New(&health.Config{Component: "test", Transport: "mem", Interval: 10 * time.Millisecond})
	go m.Run(ctx, bus, events.TopicHealth, func(err error) { t.Error(err) })
	d := <-ds
	d.Ack()
	var r health.Report
	if err := d.Event.Decode(&r); err != nil {
		t.Fatal(err)
	}
	if d.Event.Type != health.TypeSystemHealth || d.Event.Subject != "test" || r.Status != health.Healthy || r.Transport != "mem" {
		t.Fatalf("event %+v report %+v", d.Event, r)
	}
	// The schema refuses a report with an unknown status.
	e, _ := events.New(health.TypeSystemHealth, "test", health.Report{Component: "test", Status: "fine", Transport: "mem", CheckedAt: "now"})
	if err := cat.Validate(e); !errors.Is(err, events.ErrInvalidEvent) {
		t.Fatalf("unknown status accepted: %v", err)
	}
}
