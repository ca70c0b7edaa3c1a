package notify_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/membus"
	"github.com/cosmic-horizons/horizons/events/notify"
)

// The notifications consumer on a router, in its own consumer group,
// handing each job event once to a Notifier (here one that prints; the
// reference server's hub fans it out to WebSocket and SSE clients).
func Example() {
	tr := membus.New(nil)
	defer tr.Close()
	c, _ := notify.New(notify.NotifierFunc(func(ctx context.Context, owner string, e events.Event) error {
		fmt.Printf("to %s: %s\n", owner, e.Type)
		return nil
	}), nil)
	r, _ := events.NewRouter(events.RouterConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CloseTimeout: time.Second})
	r.AddConsumerHandler("notifications", events.TopicJobs, tr, c.Handler().Watermill(nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = r.Run(ctx) }()
	<-r.Running()

	bus := events.NewBus(tr, nil, nil)
	e, _ := events.New(events.JobCompleted, "job-1", events.JobData{JobID: "job-1", Owner: "alice", Agent: "imaging", DatasetID: "VLASS2.1", State: "COMPLETED", Progress: 100})
	_ = bus.Publish(ctx, events.TopicJobs, e, e) // a redelivery is passed on once
	_ = r.Close()
	// Output:
	// to alice: job.completed
}
