package deadletters_test

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/deadletters"
	"github.com/cosmic-horizons/horizons/events/membus"
)

// A Box keeps what the router dead-lettered and replays it to the topic it
// came from.
func Example() {
	ctx := context.Background()
	db, _ := sql.Open("sqlite", ":memory:")
	defer db.Close()
	db.SetMaxOpenConns(1)
	box, _ := deadletters.New(ctx, db, nil)

	// A dead letter as events.NewRouter publishes it.
	e, _ := events.New(events.JobCompleted, "job-1", events.JobData{JobID: "job-1", Owner: "alice", Agent: "imaging", DatasetID: "d", State: "COMPLETED"})
	msg, _ := events.JSONCodec{}.Marshal(e)
	msg.Metadata.Set(events.MetaDeadLetterReason, "audit store unreachable")
	msg.Metadata.Set(events.MetaDeadLetterTopic, events.TopicJobs)
	msg.Metadata.Set(events.MetaDeadLetterHandler, "audit")
	msg.Metadata.Set(events.MetaAttempts, "6")
	msg.Metadata.Set(events.MetaDeadLetterID, "dl-1")
	_, _, _ = box.Add(ctx, msg)

	ls, _ := box.List(ctx, deadletters.ListQuery{})
	fmt.Println(ls[0].ID, ls[0].Handler, ls[0].Attempts, ls[0].Reason)

	tr := membus.New(nil)
	defer tr.Close()
	got, _ := tr.Subscribe(ctx, events.TopicJobs)
	go func() {
		m := <-got
		fmt.Println("replayed", m.Metadata.Get(events.MetaEventType), "reason kept:", m.Metadata.Get(events.MetaDeadLetterReason) != "")
		m.Ack() // membus: the replay returns once the subscriber acked
	}()
	l, _ := box.Replay(ctx, "dl-1", tr)
	fmt.Println("replays:", l.Replays)
	// Output:
	// dl-1 audit 6 audit store unreachable
	// replayed job.completed reason kept: false
	// replays: 1
}
