package membus_test

import (
	"context"
	"fmt"
	"time"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/membus"
)

// Two jobs' events, published interleaved, arrive in per-job order.
func Example() {
	bus := membus.NewBus(&membus.Config{PublishTimeout: 5 * time.Second})
	defer bus.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, _ := bus.Subscribe(ctx, events.TopicJobs)

	published := make(chan error, 1)
	go func() {
		defer close(published)
		for seq, step := range []struct {
			typ   events.Type
			state string
		}{{events.JobSubmitted, "SUBMITTED"}, {events.JobQueued, "QUEUED"}, {events.JobCancelled, "CANCELLED"}} {
			for _, job := range []string{"job-a", "job-b"} {
				e, _ := events.New(step.typ, job, events.JobData{
					JobID: job, Owner: "carol", Agent: "imaging", DatasetID: "VLASS3.1", GPUs: 4, State: step.state,
				})
				e.Sequence = int64(seq + 1)
				if err := bus.Publish(ctx, events.TopicJobs, e); err != nil {
					published <- err
					return
				}
			}
		}
	}()
	for i := 0; i < 6; i++ {
		d := <-sub
		fmt.Println(d.Event.Subject, d.Event.Sequence, d.Event.Type, d.Message().Metadata.Get(events.MetaGPUs))
		d.Ack()
	}
	if err := <-published; err != nil {
		fmt.Println(err)
	}
	// Output:
	// job-a 1 job.submitted 4
	// job-b 1 job.submitted 4
	// job-a 2 job.queued 4
	// job-b 2 job.queued 4
	// job-a 3 job.cancelled 4
	// job-b 3 job.cancelled 4
}
