package kafkabus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/bustest"
	"github.com/cosmic-horizons/horizons/events/kafkabus"
)

// received records what each consumer saw, per job, in arrival order.
type received struct {
	mu     sync.Mutex
	byCons map[string]map[string][]int64 // consumer -> job -> sequences
	ids    map[string]int                // event id -> deliveries
	total  int
	notify chan struct{}
}

func newReceived() *received {
	return &received{byCons: map[string]map[string][]int64{}, ids: map[string]int{}, notify: make(chan struct{}, 1)}
}

func (r *received) add(consumer string, e events.Event) {
	r.mu.Lock()
	if r.byCons[consumer] == nil {
		r.byCons[consumer] = map[string][]int64{}
	}
	r.byCons[consumer][e.Subject] = append(r.byCons[consumer][e.Subject], e.Sequence)
	r.ids[e.ID]++
	r.total++
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// count returns the deliveries to consumer (all consumers when empty).
func (r *received) count(consumer string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if consumer == "" {
		return r.total
	}
	n := 0
	for _, seqs := range r.byCons[consumer] {
		n += len(seqs)
	}
	return n
}

// waitFor waits until cond holds; it fails the test after 30 s.
func (r *received) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !cond() {
		select {
		case <-r.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// consume acks every delivery on in and records it as consumer's.
func consume(in <-chan events.Delivery, consumer string, r *received) {
	for d := range in {
		r.add(consumer, d.Event)
		d.Ack()
	}
}

// checkOrder fails when a consumer saw a job's sequences out of order.
func (r *received) checkOrder(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for cons, jobs := range r.byCons {
		for job, seqs := range jobs {
			for i := 1; i < len(seqs); i++ {
				if seqs[i] <= seqs[i-1] {
					t.Errorf("consumer %s saw job %s out of order: %v", cons, job, seqs)
					break
				}
			}
		}
	}
}

func publishJobs(t *testing.T, bus *events.Bus, topic string, jobs []string, from, to int) []events.Event {
	t.Helper()
	var out []events.Event
	for seq := from; seq <= to; seq++ {
		for _, job := range jobs {
			e := bustest.JobEvent(t, events.JobProgress, job, int64(seq))
			if err := bus.Publish(context.Background(), topic, e); err != nil {
				t.Fatalf("publish %s seq %d: %v", job, seq, err)
			}
			out = append(out, e)
		}
	}
	return out
}

func newBus(t *testing.T, brokers []string, group string) *events.Bus {
	t.Helper()
	bus, err := kafkabus.NewBus(brokers, &kafkabus.Config{ConsumerGroup: group, Sarama: fastSarama})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Close() })
	return bus
}

func waitStable(t *testing.T, c *kfake.Cluster, group string, members int) *kfake.GroupInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gi, err := c.WaitGroupStable(ctx, group, members)
	if err != nil {
		t.Fatalf("group %s never became stable with %d members: %v", group, members, err)
	}
	return gi
}

func TestRebalanceTwoConsumersOneGroup(t *testing.T) {
	c := newCluster(t)
	brokers := c.ListenAddrs()
	topic := "rebalance-" + uuid.NewString()
	group := "rebalance"
	jobs := make([]string, 16)
	for i := range jobs {
		jobs[i] = fmt.Sprintf("job-%02d", i)
	}
	rec := newReceived()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	a := newBus(t, brokers, group)
	inA, err := a.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	go consume(inA, "A", rec)
	waitStable(t, c, group, 1)

	pub := newBus(t, brokers, "publisher-only")
	all := publishJobs(t, pub, topic, jobs, 1, 5)
	rec.waitFor(t, "A to consume the first half", func() bool { return rec.count("A") >= len(all) })

	b := newBus(t, brokers, group)
	inB, err := b.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	go consume(inB, "B", rec)
	gi := waitStable(t, c, group, 2)
	for _, m := range gi.Members {
		if n := m.NumAssigned(); n == 0 {
			t.Errorf("member %s has no partition after the rebalance: %v", m.MemberID, m.Assignment)
		}
	}
	beforeA := rec.count("A")
	all = append(all, publishJobs(t, pub, topic, jobs, 6, 10)...)
	rec.waitFor(t, "every event of both halves", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, e := range all {
			if rec.ids[e.ID] == 0 {
				return false
			}
		}
		return true
	})
	if rec.count("B") == 0 {
		t.Error("B, which joined the group, received nothing")
	}
	if rec.count("A") == beforeA {
		t.Error("A received nothing after B joined")
	}
	rec.checkOrder(t)
	rec.mu.Lock()
	dups := rec.total - len(rec.ids)
	rec.mu.Unlock()
	t.Logf("A %d, B %d deliveries, %d duplicates", rec.count("A"), rec.count("B"), dups)
}

func TestRestartResumesFromCommittedOffsets(t *testing.T) {
	c := newCluster(t)
	brokers := c.ListenAddrs()
	topic := "restart-" + uuid.NewString()
	group := "restart"
	jobs := []string{"job-a", "job-b", "job-c", "job-d"}
	const firstRun = 20

	pub := newBus(t, brokers, "publisher-only")
	all := publishJobs(t, pub, topic, jobs, 1, 10) // 40 events

	// The first consumer acks exactly firstRun events, then stops.
	rec := newReceived()
	first := newBus(t, brokers, group)
	ctx1, cancel1 := context.WithCancel(context.Background())
	in1, err := first.Subscribe(ctx1, topic)
	if err != nil {
		t.Fatal(err)
	}
	for rec.count("") < firstRun {
		select {
		case d := <-in1:
			rec.add("first", d.Event)
			d.Ack()
		case <-time.After(30 * time.Second):
			t.Fatalf("first consumer got %d of %d events", rec.count(""), firstRun)
		}
	}
	// Wait until the group has committed the acked offsets.
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	_, err = c.WaitGroupInfo(wctx, group, func(gi *kfake.GroupInfo) bool {
		var sum int64
		for _, p := range gi.Commits[topic] {
			sum += p.Offset
		}
		return sum == firstRun
	})
	if err != nil {
		t.Fatalf("offsets of the %d acked events never committed: %v", firstRun, err)
	}
	cancel1()
	if err := first.Close(); err != nil && !errors.Is(err, events.ErrClosed) && !strings.Contains(err.Error(), "closed") {
		t.Fatalf("closing the first consumer: %v", err)
	}

	// A new consumer in the same group starts where the first stopped.
	second := newBus(t, brokers, group)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	in2, err := second.Subscribe(ctx2, topic)
	if err != nil {
		t.Fatal(err)
	}
	go consume(in2, "second", rec)
	rec.waitFor(t, "the second consumer to get the rest", func() bool { return rec.count("") >= len(all) })
	time.Sleep(300 * time.Millisecond) // give a wrong replay from offset 0 a chance to show
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, e := range all {
		if n := rec.ids[e.ID]; n != 1 {
			t.Errorf("event %s seq %d delivered %d times, want once", e.Subject, e.Sequence, n)
		}
	}
	if got := rec.total; got != len(all) {
		t.Errorf("%d deliveries in total, want %d", got, len(all))
	}
	for job, seqs := range rec.byCons["second"] {
		firstSeqs := rec.byCons["first"][job]
		if len(firstSeqs) > 0 && len(seqs) > 0 && seqs[0] != firstSeqs[len(firstSeqs)-1]+1 {
			t.Errorf("job %s: first consumer stopped at %d, second started at %d", job, firstSeqs[len(firstSeqs)-1], seqs[0])
		}
	}
}

// Two consumers with their own groups each read every event; bad
// configuration is refused with the field named.
func TestGroupsPerConsumerAndConfigErrors(t *testing.T) {
	c := newCluster(t)
	brokers := c.ListenAddrs()
	topic := "groups-" + uuid.NewString()
	pub := newBus(t, brokers, "publisher-only")
	evs := publishJobs(t, pub, topic, []string{"job-x"}, 1, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, group := range []string{"metrics", "audit"} {
		sub, err := kafkabus.NewSubscriber(brokers, &kafkabus.Config{ConsumerGroup: group, Sarama: fastSarama})
		if err != nil {
			t.Fatal(err)
		}
		bus := events.NewBus(nil, sub, nil)
		defer bus.Close()
		in, err := bus.Subscribe(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range evs {
			select {
			case d := <-in:
				if d.Event.ID != want.ID {
					t.Fatalf("group %s event %d: got seq %d", group, i, d.Event.Sequence)
				}
				d.Ack()
			case <-time.After(30 * time.Second):
				t.Fatalf("group %s got %d of %d events", group, i, len(evs))
			}
		}
	}

	bad := map[string]func() error{
		"brokers is empty":  func() error { _, err := kafkabus.New(nil, nil); return err },
		"brokers[1]":        func() error { _, err := kafkabus.New([]string{brokers[0], ""}, nil); return err },
		"Config.Partitions": func() error { _, err := kafkabus.NewSubscriber(brokers, &kafkabus.Config{Partitions: -1}); return err },
		"Config.NackResendSleep": func() error {
			_, err := kafkabus.New(brokers, &kafkabus.Config{NackResendSleep: -time.Second})
			return err
		},
		"publisher configuration": func() error {
			_, err := kafkabus.New(brokers, &kafkabus.Config{Sarama: func(c *sarama.Config) { c.Net.MaxOpenRequests = 0 }})
			return err
		},
	}
	for want, f := range bad {
		if err := f(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v", want, err)
		}
	}
}
