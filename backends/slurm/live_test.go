package slurm_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/backendtest"
	"github.com/cosmic-horizons/horizons/backends/slurm"
)

// The live tests talk to a real slurmrestd, as scripts/slurm-cluster.sh
// starts it: eval "$(scripts/slurm-cluster.sh start)" sets
// HORIZONS_SLURM_URL, HORIZONS_SLURM_USER, HORIZONS_SLURM_TOKEN_FILE (or
// HORIZONS_SLURM_TOKEN) and HORIZONS_SLURM_PARTITION. Jobs run as that user
// on the machine of the test (a single-node cluster), so work directories
// are temporary directories here. Without HORIZONS_SLURM_URL the tests
// skip, unless HORIZONS_REQUIRE_SERVICES=1, where they fail.

// fakeRunner stands in for the agent runner in the conformance suite: the
// agent name picks the behaviour.
const fakeRunner = `#!/bin/bash
# usage: fake-runner run --result FILE
result=$3
agent=$(printf '%s' "$HORIZONS_TASK" | sed -n 's/.*"agent":"\([^"]*\)".*/\1/p')
case $agent in
complete) printf '{"summary":"completed job %s","metrics":{"job":%s}}\n' "$SLURM_JOB_ID" "$SLURM_JOB_ID" >"$result" ;;
fail) printf '{"error":"failing on purpose"}\n' >"$result"; exit 3 ;;
long) printf '{"percent":40,"note":"sleeping"}\n' >"${result%.result.json}.progress.json"; sleep 600 ;;
*) echo "unknown agent $agent" >&2; exit 2 ;;
esac
`

type live struct {
	url, user, token, partition string
}

// readLive reads the cluster's settings from the environment; reason is
// non-empty when there is none.
func readLive() (l live, reason string, err error) {
	l = live{url: os.Getenv("HORIZONS_SLURM_URL"), user: os.Getenv("HORIZONS_SLURM_USER"),
		token: os.Getenv("HORIZONS_SLURM_TOKEN"), partition: os.Getenv("HORIZONS_SLURM_PARTITION")}
	if l.url == "" {
		return l, `HORIZONS_SLURM_URL is not set: start a cluster with eval "$(scripts/slurm-cluster.sh start)"`, nil
	}
	if l.user == "" {
		l.user = "root"
	}
	if l.token == "" {
		f := os.Getenv("HORIZONS_SLURM_TOKEN_FILE")
		if f == "" {
			return l, "", errors.New("HORIZONS_SLURM_URL is set but neither HORIZONS_SLURM_TOKEN nor HORIZONS_SLURM_TOKEN_FILE is")
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return l, "", fmt.Errorf("HORIZONS_SLURM_TOKEN_FILE: %w", err)
		}
		l.token = strings.TrimSpace(string(b))
	}
	return l, "", nil
}

// liveEnv returns the live cluster, skips without one, and fails without
// one under HORIZONS_REQUIRE_SERVICES=1.
func liveEnv(t testing.TB) live {
	t.Helper()
	l, reason, err := readLive()
	if err != nil {
		t.Fatal(err)
	}
	if reason != "" {
		if os.Getenv("HORIZONS_REQUIRE_SERVICES") == "1" {
			t.Fatal(reason + " (HORIZONS_REQUIRE_SERVICES=1)")
		}
		t.Skip(reason)
	}
	return l
}

// workDir is a directory the jobs can write; removed at the end, after
// the test's jobs are cancelled.
func workDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "horizons-slurm-live-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// uniquePrefix names one driver's jobs. It does not start with the
// default "horizons-", so a server on the same cluster does not count the
// tests' jobs in its Capacity.
func uniquePrefix() string {
	var b [4]byte
	rand.Read(b[:])
	return "hztest-" + hex.EncodeToString(b[:]) + "-"
}

// openLive opens a driver on the live cluster that runs command; it
// cancels every job it submitted when the test ends.
func openLive(t testing.TB, l live, dir, command string, edit func(*slurm.Config)) *slurm.Driver {
	t.Helper()
	cfg := &slurm.Config{URL: l.url, UserName: l.user, Token: l.token, Partition: l.partition, WorkDir: dir,
		Command: command, JobPrefix: uniquePrefix(), MaxGPUs: 4, TotalGPUs: 4, MaxMemoryMB: 1000,
		MaxWallTime: time.Hour, Agents: []string{"complete", "fail", "long"},
		Logger: slog.New(slog.DiscardHandler)}
	if edit != nil {
		edit(cfg)
	}
	d, err := slurm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Ping(context.Background()); err != nil {
		t.Fatalf("slurmrestd at %s: %v", l.url, err)
	}
	return d
}

func writeRunner(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "fake-runner")
	if err := os.WriteFile(p, []byte(fakeRunner), 0o755); err != nil {
		t.Fatal(err)
	}
	return p + " run"
}

// cancelAll cancels the jobs of handles at cleanup (a failed test leaves
// nothing running on the cluster).
type tracker struct {
	t *testing.T
	d *slurm.Driver
	h []backends.Handle
}

func track(t *testing.T, d *slurm.Driver) *tracker {
	tr := &tracker{t: t, d: d}
	t.Cleanup(func() {
		for _, h := range tr.h {
			_ = d.Cancel(context.Background(), h)
		}
	})
	return tr
}

func (tr *tracker) submit(task backends.Task) backends.Handle {
	tr.t.Helper()
	h, err := tr.d.Submit(context.Background(), task)
	if err != nil {
		tr.t.Fatalf("Submit(%s): %v", task.ID, err)
	}
	tr.h = append(tr.h, h)
	return h
}

// wait polls until the job is terminal (or cond holds).
func wait(t *testing.T, d *slurm.Driver, h backends.Handle, limit time.Duration, cond func(backends.Status) bool) backends.Status {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		st, err := d.Status(context.Background(), h)
		if err != nil {
			t.Fatalf("Status(%s): %v", h.ExternalID, err)
		}
		if st.State.Terminal() || (cond != nil && cond(st)) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s after %s", h.ExternalID, st.State, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestLiveConformance(t *testing.T) {
	l := liveEnv(t)
	t.Parallel()
	backendtest.Run(t, backendtest.Harness{
		New: func(t *testing.T) backendtest.Instance {
			dir := workDir(t)
			d := openLive(t, l, dir, writeRunner(t, dir), nil)
			b := backends.New(d, &backends.Options{Logger: slog.New(slog.DiscardHandler)})
			// Nothing outlives the subtest: cancel what the suite left.
			t.Cleanup(func() { cancelPrefix(t, l, dir) })
			return backendtest.Instance{Backend: b}
		},
		Complete:    func(id string) backends.Task { return backends.Task{ID: id, Agent: "complete", DatasetID: "ds"} },
		Fail:        func(id string) backends.Task { return backends.Task{ID: id, Agent: "fail", DatasetID: "ds"} },
		Long:        func(id string) backends.Task { return backends.Task{ID: id, Agent: "long", DatasetID: "ds", GPUs: 1} },
		Poll:        100 * time.Millisecond,
		Timeout:     90 * time.Second,
		Concurrency: 4,
	})
}

// cancelPrefix cancels the long jobs a conformance subtest may leave (the
// suite closes the backend before it can cancel them): every job whose
// working directory is dir.
func cancelPrefix(t *testing.T, l live, dir string) {
	d, err := slurm.New(&slurm.Config{URL: l.url, UserName: l.user, Token: l.token, WorkDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return
	}
	defer d.Close()
	jobs, err := d.Jobs(context.Background())
	if err != nil {
		t.Logf("list jobs for clean-up: %v", err)
		return
	}
	for _, j := range jobs {
		if j.WorkDir == dir && !slurm.State(j.JobState).Terminal() {
			_ = d.Cancel(context.Background(), backends.Handle{Backend: d.Name(), ExternalID: j.ID()})
		}
	}
}

// TestLiveJobs submits real jobs: one completes, one fails with exit 3,
// one is cancelled while running.
func TestLiveJobs(t *testing.T) {
	l := liveEnv(t)
	t.Parallel()
	dir := workDir(t)
	d := openLive(t, l, dir, writeRunner(t, dir), nil)
	tr := track(t, d)
	ok := tr.submit(backends.Task{ID: "live-ok", Agent: "complete", DatasetID: "ds", GPUs: 2, MemoryMB: 100, WallTime: 2 * time.Minute})
	bad := tr.submit(backends.Task{ID: "live-exit3", Agent: "fail", DatasetID: "ds"})
	long := tr.submit(backends.Task{ID: "live-cancel", Agent: "long", DatasetID: "ds", GPUs: 1})

	if again, err := d.Submit(context.Background(), backends.Task{ID: "live-ok", Agent: "complete", DatasetID: "ds"}); err != nil || again.ExternalID != ok.ExternalID {
		t.Errorf("second Submit of task live-ok = %+v, %v; want the first job %+v", again, err, ok)
	}
	st := wait(t, d, ok, time.Minute, nil)
	if st.State != backends.TaskCompleted || st.Progress != 100 || st.ExitCode == nil || *st.ExitCode != 0 {
		t.Errorf("completing job: %+v, want COMPLETED, 100%%, exit 0", st)
	}
	var res struct {
		Summary string `json:"summary"`
	}
	if err := json.Unmarshal(st.Result, &res); err != nil || res.Summary != "completed job "+ok.ExternalID {
		t.Errorf("result %s (%v), want the runner's summary for job %s", st.Result, err, ok.ExternalID)
	}
	if st.StartedAt.IsZero() || st.EndedAt.Before(st.StartedAt) || st.Node == "" {
		t.Errorf("completed job times/node: started %v ended %v node %q", st.StartedAt, st.EndedAt, st.Node)
	}

	st = wait(t, d, bad, time.Minute, nil)
	if st.State != backends.TaskFailed || st.ExitCode == nil || *st.ExitCode != 3 {
		t.Errorf("failing job: state %s exit %v, want FAILED with exit code 3 (raw wait status 768 decoded)", st.State, st.ExitCode)
	}
	for _, want := range []string{"exit code 3", "NonZeroExitCode", "failing on purpose"} {
		if !strings.Contains(st.Message, want) {
			t.Errorf("failure message %q does not mention %q", st.Message, want)
		}
	}

	st = wait(t, d, long, time.Minute, func(s backends.Status) bool { return s.State == backends.TaskRunning && s.Progress > 0 })
	if st.State != backends.TaskRunning || st.Progress != 40 || st.Message != "sleeping" {
		t.Fatalf("long job before cancel: %s at %v%% (%q), want RUNNING at the runner's 40%% with its note", st.State, st.Progress, st.Message)
	}
	if err := d.Cancel(context.Background(), long); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	st = wait(t, d, long, time.Minute, nil)
	if st.State != backends.TaskCancelled {
		t.Errorf("cancelled job ended %s (%q), want CANCELLED", st.State, st.Message)
	}
	if err := d.Cancel(context.Background(), long); err != nil {
		t.Errorf("second Cancel of a cancelled job: %v, want nil", err)
	}
	// Recover from a fresh driver, as after a restart of the caller.
	d2 := openLive(t, l, dir, "unused", nil)
	if st, err := d2.Recover(context.Background(), ok); err != nil || st.State != backends.TaskCompleted || len(st.Result) == 0 {
		t.Errorf("Recover from a fresh driver = %+v, %v; want COMPLETED with the result", st, err)
	}
}

// TestLiveTimeout lets a job run into its time limit. Slurm counts time
// limits in whole minutes, so this takes about a minute; it runs in
// parallel with the other live tests.
func TestLiveTimeout(t *testing.T) {
	l := liveEnv(t)
	if testing.Short() {
		t.Skip("a Slurm time limit is at least one minute; skipped in -short mode")
	}
	t.Parallel()
	dir := workDir(t)
	d := openLive(t, l, dir, writeRunner(t, dir), nil)
	tr := track(t, d)
	h := tr.submit(backends.Task{ID: "live-timeout", Agent: "long", DatasetID: "ds", WallTime: 20 * time.Second})
	st := wait(t, d, h, 3*time.Minute, nil)
	if st.State != backends.TaskTimeout {
		t.Fatalf("job ended %s (%q), want TIMEOUT", st.State, st.Message)
	}
	if !strings.Contains(st.Message, "TimeLimit") {
		t.Errorf("timeout message %q does not give the reason TimeLimit", st.Message)
	}
	if st.Progress >= 100 {
		t.Errorf("timed-out job progress %v, want < 100", st.Progress)
	}
}

// TestLiveErrors checks the error mapping on the real server.
func TestLiveErrors(t *testing.T) {
	l := liveEnv(t)
	t.Parallel()
	dir := workDir(t)
	d := openLive(t, l, dir, "true", nil)
	ctx := context.Background()
	if _, err := d.Status(ctx, backends.Handle{Backend: d.Name(), ExternalID: "99999999"}); !errors.Is(err, backends.ErrTaskNotFound) {
		t.Errorf("Status of an unknown job = %v, want ErrTaskNotFound", err)
	}
	bad, err := slurm.New(&slurm.Config{URL: l.url, UserName: l.user, Token: "not-a-jwt-" + l.token[:8], WorkDir: dir, RetryMax: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	err = bad.Ping(ctx)
	if !errors.Is(err, backends.ErrUnauthorized) && !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Ping with a forged token = %v, want ErrUnauthorized or ErrUnavailable", err)
	}
	if err != nil && strings.Contains(err.Error(), l.token[:8]) {
		t.Errorf("error %q shows part of the token", err)
	}
	c, err := d.Verify(ctx)
	if err != nil || c.Nodes == 0 || c.TotalGPUs < 4 {
		t.Errorf("Verify = %+v, %v; want the cluster's nodes and its (at least 4) GPUs", c, err)
	}
	dp := openLive(t, l, dir, "true", func(c *slurm.Config) { c.Partition = "no-such-partition" })
	if _, err := dp.Verify(ctx); !errors.Is(err, slurm.ErrConfig) || !strings.Contains(err.Error(), "no-such-partition") {
		t.Errorf("Verify with an unknown partition = %v, want ErrConfig naming it", err)
	}
	_, err = dp.Submit(ctx, backends.Task{ID: "bad-partition", Agent: "complete", DatasetID: "ds"})
	if !errors.Is(err, backends.ErrInvalidTask) || !strings.Contains(err.Error(), "no-such-partition") {
		t.Errorf("Submit to an unknown partition = %v, want ErrInvalidTask naming the partition", err)
	}
}

// TestLiveAgentRunner builds cmd/horizons-agent and runs the alphacal
// agent on synthetic data as a Slurm job.
func TestLiveAgentRunner(t *testing.T) {
	l := liveEnv(t)
	t.Parallel()
	dir := workDir(t)
	bin := filepath.Join(dir, "horizons-agent")
	build := exec.Command("go", "build", "-o", bin, "github.com/cosmic-horizons/horizons/cmd/horizons-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build horizons-agent: %v\n%s", err, out)
	}
	d := openLive(t, l, dir, bin+" run", func(c *slurm.Config) { c.Agents = nil })
	tr := track(t, d)
	params, _ := json.Marshal(map[string]any{"flagger": "sumthreshold"})
	h := tr.submit(backends.Task{ID: "live-alphacal", Agent: "alphacal", DatasetID: "VLASS2.1.sb123.eb456", Params: params, WallTime: 5 * time.Minute})
	st := wait(t, d, h, 2*time.Minute, nil)
	if st.State != backends.TaskCompleted {
		out, _ := os.ReadFile(filepath.Join(dir, "horizons-"+h.ExternalID+".err"))
		t.Fatalf("alphacal job ended %s (%q); stderr:\n%s", st.State, st.Message, out)
	}
	var res struct {
		Summary   string             `json:"summary"`
		Metrics   map[string]float64 `json:"metrics"`
		Artifacts []string           `json:"artifacts"`
	}
	if err := json.Unmarshal(st.Result, &res); err != nil {
		t.Fatalf("result %s: %v", st.Result, err)
	}
	if res.Summary == "" || len(res.Metrics) == 0 || len(res.Artifacts) == 0 {
		t.Fatalf("alphacal result lacks summary, metrics or artifacts: %s", st.Result)
	}
	for _, a := range res.Artifacts {
		if _, err := os.Stat(filepath.Join(dir, "horizons-"+h.ExternalID+".d", a)); err != nil {
			t.Errorf("artifact %s: %v", a, err)
		}
	}
	// An unknown agent makes the runner exit 2 with its reason in the
	// result file, which the failure message carries.
	d.Close()
	d = openLive(t, l, dir, bin+" run", func(c *slurm.Config) { c.Agents = []string{"no-such-agent"} })
	tr = track(t, d)
	h = tr.submit(backends.Task{ID: "live-unknown", Agent: "no-such-agent", DatasetID: "ds"})
	st = wait(t, d, h, time.Minute, nil)
	if st.State != backends.TaskFailed || st.ExitCode == nil || *st.ExitCode != 2 || !strings.Contains(st.Message, "no-such-agent") {
		t.Errorf("unknown agent: %s exit %v %q, want FAILED, exit 2, naming the agent", st.State, st.ExitCode, st.Message)
	}
	_, stderr, err := d.Logs(h.ExternalID, 0)
	if err != nil || !strings.Contains(string(stderr), `field agent is "no-such-agent"`) {
		t.Errorf("stderr of the failed runner = %q, %v; want its reason", stderr, err)
	}
	if _, short, err := d.Logs(h.ExternalID, 10); err != nil || len(short) != 10 || !strings.HasSuffix(string(stderr), string(short)) {
		t.Errorf("Logs(max 10) = %q, %v; want the last 10 bytes", short, err)
	}
}
