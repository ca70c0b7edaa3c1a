package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/simgpu"
	"github.com/cosmic-horizons/horizons/orchestrator"
)

// TestDefaultSpeedUp checks the claim behind the -sim-speedup default on
// the simulator itself, with a manual clock: the median built-in agent on a
// dataset of the mean simulated size (simgpu.DatasetSize spans 1–50 GB) on
// one GPU finishes in about 10 s of clock time.
func TestDefaultSpeedUp(t *testing.T) {
	clock := simgpu.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b, err := simgpu.Open(&simgpu.Config{
		SpeedUp: defaultSimSpeedUp, Clock: clock,
		DatasetGB: func(string) float64 { return 25.5 },
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, &backends.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	names := []string{agents.NameAlphaCal, agents.NameImageReconstruction, agents.NameAnomalyDetection}
	handles := map[string]backends.Handle{}
	for _, a := range names {
		h, err := b.Submit(ctx, backends.Task{ID: "t-" + a, Agent: a, DatasetID: "typical", GPUs: 1})
		if err != nil {
			t.Fatal(err)
		}
		handles[a] = h
	}
	start := clock.Now()
	took := map[string]time.Duration{}
	for step := 0; len(took) < len(names); step++ {
		if step > 100000 {
			t.Fatalf("tasks never finished: %v", took)
		}
		clock.Advance(100 * time.Millisecond)
		for a, h := range handles {
			if _, done := took[a]; done {
				continue
			}
			st, err := b.Status(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			if st.State.Terminal() {
				if st.State != backends.TaskCompleted {
					t.Fatalf("%s ended %s: %s", a, st.State, st.Message)
				}
				took[a] = clock.Now().Sub(start)
			}
		}
	}
	ds := []time.Duration{took[names[0]], took[names[1]], took[names[2]]}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	t.Logf("clock time at speed-up %g: %v (median %v)", defaultSimSpeedUp, took, ds[1])
	if ds[1] < 7*time.Second || ds[1] > 14*time.Second {
		t.Fatalf("the typical (median) job takes %v at the default speed-up %g; want about 10 s", ds[1], defaultSimSpeedUp)
	}
}

// TestDoneWhenSimGPU runs the acceptance scenario on the production
// wiring (SQLite store, membus, simgpu) with the speed-up from the
// environment; only the orchestrator's polling is made faster.
func TestDoneWhenSimGPU(t *testing.T) {
	env := map[string]string{envAdminToken: testAdminToken, envSimSpeedUp: "40"}
	ts := startServer(t, t.TempDir(), env, testOptions(-1))
	ws, _, err := ts.dialWS(testAdminToken, "", false)
	if err != nil {
		t.Fatal(err)
	}
	// alphacal on VLASS2.2 (3.8 GB) is modelled at 45 s: about 1 s here.
	const corr = "simgpu-e2e"
	job, r := ts.submit(testAdminToken, map[string]any{"agent": "AlphaCal", "dataset_id": "VLASS2.2", "gpus": 1}, map[string]string{"X-Correlation-ID": corr})
	if r.status != http.StatusCreated {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	got := until(t, ws.events, terminalEvent(job.ID))
	checkLifecycle(t, got, job.ID, corr)
	sameEvents(t, "history vs WebSocket", ts.jobEvents(testAdminToken, job.ID), got)
	final := ts.getJob(testAdminToken, job.ID)
	if final.Backend != "simgpu" || final.State != string(orchestrator.StateCompleted) || final.Progress != 100 {
		t.Fatalf("final job %+v", final)
	}
}

// TestRunProductionWiring starts the server through run, exactly as main
// does (flags, environment, default orchestrator settings), runs a job to
// completion and shuts down when the context ends.
func TestRunProductionWiring(t *testing.T) {
	dir := t.TempDir()
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := map[string]string{envAdminToken: testAdminToken, envLogLevel: "error"}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-data", dir, "-sim-speedup", "100000"}, func(k string) string { return env[k] }, out)
	}()
	ts := &testServer{t: t, stdout: out, logs: &syncBuffer{}}
	deadline := time.Now().Add(waitLimit)
	for {
		if m := listenRe.FindStringSubmatch(out.String()); m != nil {
			ts.host, ts.base = m[1], "http://"+m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run returned during start-up: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening line: %s", out.String())
		}
	}
	if r := ts.do("GET", "/readyz", "", nil, nil); r.status != http.StatusOK {
		t.Fatalf("readyz %d", r.status)
	}
	job, r := ts.submit(testAdminToken, map[string]any{"agent": "anomaly-detection", "dataset_id": "VLASS1.1.T10t05"}, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	final := ts.waitJob(testAdminToken, job.ID, func(j jobJSON) bool { return j.State == string(orchestrator.StateCompleted) })
	if final.Backend != "simgpu" {
		t.Fatalf("backend %q", final.Backend)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("run did not return after cancel")
	}
	if !strings.Contains(out.String(), dir) {
		t.Errorf("stdout does not name the data directory: %s", out.String())
	}
	// The port is released.
	if _, err := http.Get(ts.base + "/healthz"); err == nil {
		t.Error("server still answers after run returned")
	}
}

// TestRestartSimGPU: the simulated cluster keeps tasks in memory only, so
// after a restart a job that was RUNNING must not stay RUNNING.
func TestRestartSimGPU(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{envAdminToken: testAdminToken, envSimSpeedUp: "30"}
	ts := startServer(t, dir, env, testOptions(-1))
	// image-reconstruction on "d1" (43.5 GB) is modelled at 21 min: 43 s here.
	long, _ := ts.submit(testAdminToken, map[string]any{"agent": "image-reconstruction", "dataset_id": "d1", "gpus": 1}, nil)
	before := ts.waitJob(testAdminToken, long.ID, func(j jobJSON) bool { return j.State == string(orchestrator.StateRunning) })
	n := len(ts.jobEvents(testAdminToken, long.ID))
	ts.stop()

	ts2 := startServer(t, dir, env, testOptions(-1))
	after := ts2.waitJob(testAdminToken, long.ID, func(j jobJSON) bool {
		return j.Attempts > before.Attempts || orchestrator.State(j.State).Terminal()
	})
	hist := ts2.jobEvents(testAdminToken, long.ID)
	var reason string
	for _, e := range hist[n:] {
		if e.Type == "job.failed" {
			var d struct{ Reason, Error string }
			_ = e.Decode(&d)
			reason = d.Reason
			if reason == "" {
				reason = d.Error
			}
		}
	}
	if reason == "" {
		t.Fatalf("no job.failed with a reason after restart: %v", types(hist))
	}
	t.Logf("after restart: %s attempts %d, events %v, reason %q", after.State, after.Attempts, types(hist), reason)
}
