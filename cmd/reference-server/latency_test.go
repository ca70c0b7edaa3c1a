package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cosmic-horizons/horizons/events"
)

// BenchmarkSubmitToWebSocket measures, per event transport, the latency
// from the start of POST /api/v1/jobs to the job.submitted event arriving
// on the owner's WebSocket: REST, validation, the store transaction with
// the outbox, the forwarder's publish on the transport, the notifications
// consumer (its own group) and the hub. It reports p50-ms and p99-ms
// (cmd/horizons-eventbench -latency prints them beside the throughput).
// Live transports that are unreachable are skipped.
func BenchmarkSubmitToWebSocket(b *testing.B) {
	for _, tc := range transportCases {
		if tc.name == "sqlite" && os.Getenv("HORIZONS_BENCH_SQLITE") == "" {
			continue
		}
		b.Run(tc.name, func(b *testing.B) {
			opts := testOptions(time.Hour)
			opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			env := map[string]string{envAdminToken: testAdminToken, envEvents: tc.url(b)}
			cfg, err := parseConfig([]string{"-addr", "127.0.0.1:0", "-data", b.TempDir()}, func(k string) string { return env[k] }, io.Discard)
			if err != nil {
				b.Fatal(err)
			}
			s, err := newServer(context.Background(), cfg, io.Discard, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer s.shutdown(context.Background())
			base := "http://" + s.addr()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			conn, _, err := websocket.Dial(ctx, "ws://"+s.addr()+"/api/v1/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + testAdminToken}}})
			if err != nil {
				b.Fatal(err)
			}
			defer conn.CloseNow()
			conn.SetReadLimit(1 << 20)
			arrived := make(chan string, 1024)
			go func() {
				for {
					_, msg, err := conn.Read(ctx)
					if err != nil {
						close(arrived)
						return
					}
					if strings.Contains(string(msg), `"type":"`+string(events.JobSubmitted)+`"`) {
						arrived <- string(msg)
					}
				}
			}()
			submit := func(i int) {
				body := fmt.Sprintf(`{"agent":"alphacal","dataset_id":"lat-%d","gpus":1}`, i)
				req, _ := http.NewRequest("POST", base+"/api/v1/jobs", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+testAdminToken)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusCreated {
					b.Fatalf("submit: %d", res.StatusCode)
				}
				select {
				case _, ok := <-arrived:
					if !ok {
						b.Fatal("websocket closed")
					}
				case <-time.After(time.Minute):
					b.Fatal("job.submitted never reached the websocket")
				}
			}
			submit(-1) // warm-up: consumer groups joined, connections open
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				submit(i)
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			q := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(q(0.50), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
		})
	}
}
