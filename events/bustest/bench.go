package bustest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/cosmic-horizons/horizons/events"
)

// BenchConstructor returns a publisher and a subscriber sharing one broker
// for a benchmark. The benchmark closes both.
type BenchConstructor func(b *testing.B) (message.Publisher, message.Subscriber)

// Bench measures events per second from publish to handler, side by side:
//
//   - "raw": watermill alone on the same transport and settings, doing the
//     work any application must: json.Marshal of the envelope into a message
//     carrying the same headers, set by hand, on publish, json.Unmarshal back into an Event in
//     a handler on a Router without middleware;
//   - "sdk": the SDK path, Bus.Publish (validation and JSON encoding),
//     NewRouter's middleware and a HandlerFunc that receives the decoded
//     event.
//
// Each sub-benchmark reports events/s; their ratio is the SDK's overhead.
// publishers goroutines publish, each owning its own jobs so per-job order is
// kept; zero means one.
func Bench(b *testing.B, newPubSub BenchConstructor, publishers int) {
	if publishers <= 0 {
		publishers = 1
	}
	b.Run("raw", func(b *testing.B) { BenchPath(b, newPubSub, publishers, false) })
	b.Run("sdk", func(b *testing.B) { BenchPath(b, newPubSub, publishers, true) })
}

// BenchPath is one side of Bench: the SDK path when sdk is true, raw
// watermill otherwise. It reports "events/s"; commands that print the
// side-by-side table (cmd/horizons-eventbench) call it through
// testing.Benchmark.
func BenchPath(b *testing.B, newPubSub BenchConstructor, publishers int, sdk bool) {
	if publishers <= 0 {
		publishers = 1
	}
	pub, sub := newPubSub(b)
	topic := "bench_" + uuid.NewString()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	var handled atomic.Int64
	var router *message.Router
	var err error
	if sdk {
		router, err = events.NewRouter(events.RouterConfig{Logger: quiet, CloseTimeout: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		h := events.HandlerFunc(func(ctx context.Context, e events.Event) error {
			handled.Add(1)
			return nil
		})
		router.AddConsumerHandler("bench", topic, sub, h.Watermill(nil))
	} else {
		router, err = message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, watermill.NopLogger{})
		if err != nil {
			b.Fatal(err)
		}
		router.AddConsumerHandler("bench", topic, sub, func(m *message.Message) error {
			var e events.Event
			if err := json.Unmarshal(m.Payload, &e); err != nil {
				return err
			}
			handled.Add(1)
			return nil
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = router.Run(ctx) }()
	<-router.Running()
	bus := events.NewBus(pub, sub, nil)
	defer func() {
		cancel()
		_ = router.Close()
		_ = bus.Close()
	}()

	// Build the events before the clock.
	total := b.N + 1 // one warm-up event: consumer-group joins are not measured
	evs := make([][]events.Event, publishers)
	for i := 0; i < total; i++ {
		p := i % publishers
		job := fmt.Sprintf("job-%d-%d", p, i/publishers%50)
		evs[p] = append(evs[p], JobEvent(b, events.JobProgress, job, int64(i+1)))
	}
	publish := func(p, i int) error {
		e := evs[p][i]
		if sdk {
			return bus.Publish(ctx, topic, e)
		}
		payload, err := json.Marshal(e)
		if err != nil {
			return err
		}
		// The same headers the SDK writes, set by hand.
		m := message.NewMessage(e.ID, payload)
		m.Metadata.Set(events.MetaEventID, e.ID)
		m.Metadata.Set(events.MetaEventType, string(e.Type))
		m.Metadata.Set(events.MetaSubject, e.Subject)
		m.Metadata.Set(events.MetaSequence, strconv.FormatInt(e.Sequence, 10))
		m.Metadata.Set(events.MetaPartitionKey, e.Subject)
		m.Metadata.Set(events.MetaTime, e.Time.Format(time.RFC3339Nano))
		m.Metadata.Set(events.MetaCorrelationID, e.CorrelationID)
		m.Metadata.Set(events.MetaJobID, e.Subject)
		m.Metadata.Set(events.MetaAgent, "anomaly-detection")
		m.Metadata.Set(events.MetaDatasetID, "VLASS3.1.T22t15.J101519+063000")
		m.Metadata.Set(events.MetaGPUs, "3")
		m.Metadata.Set(events.MetaContentType, "application/json")
		return pub.Publish(topic, m)
	}
	wait := func(n int64) {
		deadline := time.Now().Add(2 * time.Minute)
		for handled.Load() < n {
			if time.Now().After(deadline) {
				b.Fatalf("handled %d of %d events", handled.Load(), n)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}

	// Warm-up: the first event of publisher 0.
	if err := publish(0, 0); err != nil {
		b.Fatal(err)
	}
	wait(1)

	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := 0; p < publishers; p++ {
		first := 0
		if p == 0 {
			first = 1
		}
		wg.Add(1)
		go func(p, first int) {
			defer wg.Done()
			for i := first; i < len(evs[p]); i++ {
				if err := publish(p, i); err != nil {
					errs <- err
					return
				}
			}
		}(p, first)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	wait(int64(total))
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}
