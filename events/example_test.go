package events_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/membus"
)

// A payload that breaks its schema is refused before it is encoded, with an
// error naming the field and the value.
func ExampleCatalogue_Validate() {
	e, _ := events.New(events.JobQueued, "job-1", events.JobData{
		JobID: "job-1", Owner: "alice", Agent: "imaging", DatasetID: "VLASS2.1",
		GPUs: -2, State: "QUEUED",
	})
	err := events.DefaultCatalogue().Validate(e)
	fmt.Println(errors.Is(err, events.ErrInvalidEvent))
	fmt.Println(strings.Contains(err.Error(), "field data.gpus is -2, below the minimum 0"))
	// Output:
	// true
	// true
}

// One job's lifecycle published on the in-memory bus and read back in order.
func ExampleBus() {
	bus := membus.NewBus(nil)
	defer bus.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	sub, err := bus.Subscribe(ctx, events.TopicJobs)
	if err != nil {
		fmt.Println(err)
		return
	}
	steps := []struct {
		typ   events.Type
		state string
	}{
		{events.JobSubmitted, "SUBMITTED"}, {events.JobQueued, "QUEUED"},
		{events.JobRunning, "RUNNING"}, {events.JobCompleted, "COMPLETED"},
	}
	published := make(chan error, 1)
	go func() { // membus returns from Publish once the subscriber has acked
		defer close(published)
		for i, s := range steps {
			e, _ := events.New(s.typ, "job-42", events.JobData{
				JobID: "job-42", Owner: "alice", Agent: "imaging", DatasetID: "VLASS2.1.T10t01",
				GPUs: 2, State: s.state, Backend: "simgpu", Progress: float64(100 * i / 3),
			})
			e.Sequence = int64(i + 1)
			e.CorrelationID = "req-7"
			if err := bus.Publish(ctx, events.TopicJobs, e); err != nil {
				published <- err
				return
			}
		}
	}()
	for range steps {
		d := <-sub
		var data events.JobData
		_ = d.Event.Decode(&data)
		fmt.Println(d.Event.Sequence, d.Event.Type, data.State, d.Event.CorrelationID)
		d.Ack()
	}
	if err := <-published; err != nil {
		fmt.Println(err)
	}
	// Output:
	// 1 job.submitted SUBMITTED req-7
	// 2 job.queued QUEUED req-7
	// 3 job.running RUNNING req-7
	// 4 job.completed COMPLETED req-7
}

// A redelivered event is applied once.
func ExampleDeduplicator() {
	d := events.NewDeduplicator(1000)
	applied := 0
	h := d.Wrap(func(ctx context.Context, e events.Event) error {
		applied++
		return nil
	})
	e, _ := events.New(events.JobSubmitted, "job-1", events.JobData{JobID: "job-1"})
	for i := 0; i < 3; i++ { // delivered three times
		_ = h(context.Background(), e)
	}
	fmt.Println("applied", applied)
	// Output: applied 1
}

// A router consumer with retries and a dead-letter topic.
func ExampleNewRouter() {
	tr := membus.New(nil)
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dead, _ := tr.Subscribe(ctx, events.DefaultDeadLetterTopic)

	r, err := events.NewRouter(events.RouterConfig{
		MaxRetries: 2, InitialInterval: time.Millisecond, // 1 attempt + 2 retries
		DeadLetters: tr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	audit := events.HandlerFunc(func(ctx context.Context, e events.Event) error {
		if e.Type == events.JobFailed {
			return fmt.Errorf("audit store refused %s", e.Subject)
		}
		fmt.Println("audited", e.Subject, e.Type)
		return nil
	})
	r.AddConsumerHandler("audit", events.TopicJobs, tr, audit.Watermill(nil))
	go func() { _ = r.Run(ctx) }()
	<-r.Running()
	defer r.Close()

	bus := events.NewBus(tr, nil, nil)
	go func() {
		for _, s := range []struct {
			typ          events.Type
			state, error string
		}{{events.JobQueued, "QUEUED", ""}, {events.JobFailed, "FAILED", "out of memory"}} {
			e, _ := events.New(s.typ, "job-9", events.JobData{
				JobID: "job-9", Owner: "bob", Agent: "alphacal", DatasetID: "VLASS1.2", GPUs: 1,
				State: s.state, Error: s.error,
			})
			_ = bus.Publish(ctx, events.TopicJobs, e)
		}
	}()
	dl := <-dead
	dl.Ack()
	fmt.Println("dead letter:", dl.Metadata.Get(events.MetaDeadLetterReason),
		"after", dl.Metadata.Get(events.MetaAttempts), "attempts")
	// Output:
	// audited job-9 job.queued
	// dead letter: audit store refused job-9 after 3 attempts
}
