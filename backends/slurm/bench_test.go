package slurm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/slurm"
)

// BenchmarkDecodeJob decodes one job record of each API generation: the
// recorded v0.0.38 record (108 fields) and a v0.0.41 record.
func BenchmarkDecodeJob(b *testing.B) {
	var doc struct {
		Jobs []json.RawMessage `json:"jobs"`
	}
	if err := json.Unmarshal(fixture(b, "v0038-resp-job4.json"), &doc); err != nil {
		b.Fatal(err)
	}
	v41 := []byte(`{"job_id":5,"name":"horizons-x","job_state":["FAILED"],"state_reason":"NonZeroExitCode","exit_code":{"status":["ERROR"],"return_code":{"set":true,"infinite":false,"number":3},"signal":{"id":{"set":false,"infinite":false,"number":0},"name":""}},"start_time":{"set":true,"infinite":false,"number":1795719890},"end_time":{"set":true,"infinite":false,"number":1795719950},"time_limit":{"set":true,"infinite":false,"number":60}}`)
	for _, c := range []struct {
		name string
		rec  []byte
	}{{"v0.0.38", doc.Jobs[0]}, {"v0.0.41", v41}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.rec)))
			for b.Loop() {
				var j slurm.Job
				if err := json.Unmarshal(c.rec, &j); err != nil {
					b.Fatal(err)
				}
				_ = slurm.JobStatus(j)
			}
		})
	}
}

// BenchmarkStatusRecorded is one Status call against a local HTTP server
// answering with the recorded 22.05 job record: the client's own cost
// (request, headers, decode, mapping) without Slurm.
func BenchmarkStatusRecorded(b *testing.B) {
	_, srv := newFake(b)
	d, err := slurm.New(&slurm.Config{URL: srv.URL, UserName: user, Token: token, WorkDir: "/scratch/horizons"})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	h := backends.Handle{Backend: d.Name(), ExternalID: "4"}
	for b.Loop() {
		if _, err := d.Status(ctx, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLiveRoundTrip submits a trivial job (the runner is `true`) to
// the live cluster and polls every 20 ms until it completes: the dispatch
// latency of Slurm plus slurmrestd. Skipped without HORIZONS_SLURM_URL.
func BenchmarkLiveRoundTrip(b *testing.B) {
	l := liveEnv(b)
	dir := workDir(b)
	d := openLive(b, l, dir, "true", func(c *slurm.Config) { c.Agents = []string{"complete"} })
	defer d.Close()
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		h, err := d.Submit(ctx, backends.Task{ID: fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i), Agent: "complete", DatasetID: "ds"})
		if err != nil {
			b.Fatal(err)
		}
		for {
			st, err := d.Status(ctx, h)
			if err != nil {
				b.Fatal(err)
			}
			if st.State.Terminal() {
				if st.State != backends.TaskCompleted {
					b.Fatalf("job ended %s (%q)", st.State, st.Message)
				}
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
