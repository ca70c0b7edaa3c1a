package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/audit"
	"github.com/cosmic-horizons/horizons/events/membus"
)

// The audit chain as a consumer on the bus: a redelivered event is recorded
// once, and an edited record is found by Verify.
func Example() {
	store := audit.NewMemStore()
	chain := audit.New(store)
	bus := membus.NewBus(nil)
	defer bus.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, _ := bus.Subscribe(ctx, events.TopicJobs)
	record := chain.Handler()

	var evs []events.Event
	for i, s := range []struct {
		typ   events.Type
		state string
	}{{events.JobSubmitted, "SUBMITTED"}, {events.JobQueued, "QUEUED"}, {events.JobCancelled, "CANCELLED"}} {
		e, _ := events.New(s.typ, "job-1", events.JobData{
			JobID: "job-1", Owner: "frank", Agent: "imaging", DatasetID: "VLASS2.1", GPUs: 2, State: s.state,
		})
		e.Sequence = int64(i + 1)
		evs = append(evs, e)
	}
	evs = append(evs, evs[1]) // the transport delivers job.queued twice

	go func() {
		for _, e := range evs {
			_ = bus.Publish(ctx, events.TopicJobs, e)
		}
	}()
	for range evs {
		d := <-sub
		if err := record(ctx, d.Event); err != nil {
			fmt.Println(err)
		}
		d.Ack()
	}
	rep, _ := chain.Verify(ctx)
	fmt.Println("records:", rep.Records, "ok:", rep.OK)

	store.Tamper(func(rs []audit.Record) []audit.Record {
		rs[1].Event.Data = json.RawMessage(strings.Replace(string(rs[1].Event.Data), `"gpus":2`, `"gpus":0`, 1))
		return rs
	})
	rep, _ = chain.Verify(ctx)
	fmt.Println("ok:", rep.OK, "first bad record:", rep.FirstBad, rep.Problem)
	// Output:
	// records: 3 ok: true
	// ok: false first bad record: 2 tampered
}
