package kafkabus_test

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/kafkabus"
)

// One job's events through Kafka (here an in-process broker), keyed by the
// job id so they stay in order.
func Example() {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cluster.Close()

	bus, err := kafkabus.NewBus(cluster.ListenAddrs(), &kafkabus.Config{ConsumerGroup: "example"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bus.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	for i, state := range []string{"SUBMITTED", "QUEUED", "RUNNING"} {
		typ := []events.Type{events.JobSubmitted, events.JobQueued, events.JobRunning}[i]
		e, _ := events.New(typ, "job-7", events.JobData{
			JobID: "job-7", Owner: "dana", Agent: "alphacal", DatasetID: "VLASS2.2", GPUs: 1,
			State: state, Backend: "slurm",
		})
		e.Sequence = int64(i + 1)
		if err := bus.Publish(ctx, events.TopicJobs, e); err != nil {
			fmt.Println(err)
			return
		}
	}
	sub, err := bus.Subscribe(ctx, events.TopicJobs) // a new group starts at the oldest offset
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := 0; i < 3; i++ {
		d := <-sub
		fmt.Println(d.Event.Sequence, d.Event.Type, d.Message().Metadata.Get(events.MetaPartitionKey))
		d.Ack()
	}
	// Output:
	// 1 job.submitted job-7
	// 2 job.queued job-7
	// 3 job.running job-7
}
