package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/membus"
)

// BenchmarkHubDispatch measures fanning one event out to 100 clients of
// which 10 may see it (one owner) — the per-event cost on the hub's
// delivery loop, plus the 10 clients' channel receives.
func BenchmarkHubDispatch(b *testing.B) {
	bus := membus.NewBus(nil)
	defer bus.Close()
	h := newHub(bus, events.TopicJobs, slog.New(slog.NewTextHandler(io.Discard, nil)), newMetrics(), hubConfig{Buffer: 4})
	var owners []*user
	for i := 0; i < 10; i++ {
		owners = append(owners, &user{ID: fmt.Sprintf("u%d", i), Role: roleUser})
	}
	var readers []*client
	for i := 0; i < 100; i++ {
		c, err := h.register(owners[i%10], subscription{}, "ws", nil)
		if err != nil {
			b.Fatal(err)
		}
		if i%10 == 3 {
			readers = append(readers, c)
		}
	}
	e, err := events.New(events.JobProgress, "job-1", events.JobData{JobID: "job-1", Owner: "u3", Agent: "alphacal", DatasetID: "d", State: "RUNNING", Progress: 40})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.ID = fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
		h.dispatch(e, "")
		for _, c := range readers {
			<-c.ch
		}
	}
	b.StopTimer()
	if n := h.clientCount(); n != 100 {
		b.Fatalf("%d clients left; a reader was dropped", n)
	}
}

// BenchmarkSubmitHTTP measures POST /api/v1/jobs end to end: token check,
// JSON decoding, validation, the SQLite transaction and the response.
func BenchmarkSubmitHTTP(b *testing.B) {
	opts := testOptions(time.Hour)
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg, err := parseConfig([]string{"-addr", "127.0.0.1:0", "-data", b.TempDir()}, func(k string) string { return adminEnv[k] }, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	s, err := newServer(context.Background(), cfg, io.Discard, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.shutdown(context.Background())
	url := "http://" + s.addr() + "/api/v1/jobs"
	body := []byte(`{"agent":"alphacal","dataset_id":"long-bench","gpus":1}`)
	client := &http.Client{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testAdminToken)
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}
