package slurm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/slurm"
)

const (
	user  = "root"
	token = "eyJhbGciOiJIUzI1NiJ9.secret-token-value.sig"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withJob returns the recorded job-4 response with some fields replaced.
func withJob(t testing.TB, fields map[string]any) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(fixture(t, "v0038-resp-job4.json"), &doc); err != nil {
		t.Fatal(err)
	}
	job := doc["jobs"].([]any)[0].(map[string]any)
	for k, v := range fields {
		job[k] = v
	}
	b, _ := json.Marshal(doc)
	return b
}

// fakeRest is slurmrestd v0.0.38 answering with recorded responses. It
// checks the headers and the submit body of every request.
type fakeRest struct {
	t        testing.TB
	mu       sync.Mutex
	jobs     map[string][]byte // job id -> GET /job/{id} body
	calls    atomic.Int64
	fail     func(r *http.Request) (int, []byte, bool)
	lastSub  map[string]any
	problems []string
}

func newFake(t testing.TB) (*fakeRest, *httptest.Server) {
	f := &fakeRest{t: t, jobs: map[string][]byte{"4": fixture(t, "v0038-resp-job4.json")}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, p := range f.problems {
			t.Error("request problem: " + p)
		}
	})
	return f, srv
}

func (f *fakeRest) problem(s string) {
	f.mu.Lock()
	f.problems = append(f.problems, s)
	f.mu.Unlock()
}

func (f *fakeRest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	if f.fail != nil {
		if code, body, ok := f.fail(r); ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			w.Write(body)
			return
		}
	}
	if r.Header.Get("X-SLURM-USER-NAME") == "" {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte("missing header user name: X-SLURM-USER-NAME"))
		return
	}
	if r.Header.Get("X-SLURM-USER-TOKEN") != token {
		// What slurmctld does with a forged or expired token.
		w.WriteHeader(http.StatusInternalServerError)
		w.Write(fixture(f.t, "v0038-err-bad-token-submit.json"))
		return
	}
	p, ok := strings.CutPrefix(r.URL.Path, "/slurm/v0.0.38/")
	if !ok {
		f.problem("path " + r.URL.Path + " is not under /slurm/v0.0.38/")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	reply := func(code int, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		w.Write(body)
	}
	switch {
	case r.Method == http.MethodPost && p == "job/submit":
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte("Unable to parse query."))
			f.problem("submit Content-Type " + ct)
			return
		}
		var body struct {
			Script string         `json:"script"`
			Job    map[string]any `json:"job"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte("Unable to parse query."))
			return
		}
		f.mu.Lock()
		f.lastSub = body.Job
		f.lastSub["script"] = body.Script
		f.mu.Unlock()
		if env, ok := body.Job["environment"].(map[string]any); !ok || len(env) == 0 {
			reply(http.StatusBadRequest, fixture(f.t, "v0038-err-env-missing.json"))
			return
		}
		if !strings.HasPrefix(body.Script, "#!") {
			f.problem("script without #!: " + body.Script)
		}
		if body.Job["current_working_directory"] == nil {
			f.problem("no current_working_directory")
		}
		if part, _ := body.Job["partition"].(string); part != "" && part != "debug" {
			reply(http.StatusInternalServerError, fixture(f.t, "v0038-err-bad-partition.json"))
			return
		}
		reply(http.StatusOK, fixture(f.t, "v0038-resp-submit.json"))
	case r.Method == http.MethodGet && p == "jobs":
		var all []any
		f.mu.Lock()
		for _, b := range f.jobs {
			var doc map[string]any
			json.Unmarshal(b, &doc)
			all = append(all, doc["jobs"].([]any)...)
		}
		f.mu.Unlock()
		var doc map[string]any
		json.Unmarshal(fixture(f.t, "v0038-resp-job4.json"), &doc)
		doc["jobs"] = all
		b, _ := json.Marshal(doc)
		reply(http.StatusOK, b)
	case strings.HasPrefix(p, "job/"):
		id := strings.TrimPrefix(p, "job/")
		f.mu.Lock()
		body, ok := f.jobs[id]
		f.mu.Unlock()
		switch {
		case r.Method == http.MethodGet && ok:
			reply(http.StatusOK, body)
		case r.Method == http.MethodGet:
			reply(http.StatusInternalServerError, fixture(f.t, "v0038-err-job-not-found.json"))
		case r.Method == http.MethodDelete && ok:
			reply(http.StatusOK, fixture(f.t, "v0038-resp-cancel.json"))
		case r.Method == http.MethodDelete:
			reply(http.StatusInternalServerError, fixture(f.t, "v0038-err-cancel-not-found.json"))
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	case r.Method == http.MethodGet && p == "nodes":
		reply(http.StatusOK, fixture(f.t, "v0038-samples-nodes.json"))
	case r.Method == http.MethodGet && p == "partitions":
		reply(http.StatusOK, fixture(f.t, "v0038-samples-partitions.json"))
	case r.Method == http.MethodGet && p == "ping":
		reply(http.StatusOK, []byte(`{"meta":{},"errors":[],"pings":[{"hostname":"vm","ping":"UP","status":0,"mode":"primary"}]}`))
	default:
		f.problem(r.Method + " " + r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
	}
}

func newDriver(t *testing.T, url string, edit func(*slurm.Config)) (*slurm.Driver, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	cfg := slurm.Config{
		URL: url, UserName: user, Token: token, WorkDir: "/scratch/horizons", Partition: "debug",
		MaxGPUs: 4, MaxWallTime: 24 * time.Hour, RetryWaitMin: time.Millisecond, RetryWaitMax: 2 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&cfg)
	}
	d, err := slurm.New(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, &logs
}

var task = backends.Task{ID: "job-1-1", Agent: "alphacal", DatasetID: "VLASS2.1.T10t01", GPUs: 2, MemoryMB: 4096,
	WallTime: 90*time.Minute + time.Second, Env: map[string]string{"OMP_NUM_THREADS": "4"}}

func TestSubmitStatusCancel(t *testing.T) {
	f, srv := newFake(t)
	d, _ := newDriver(t, srv.URL, nil)
	ctx := context.Background()
	h, err := d.Submit(ctx, task)
	if err != nil {
		t.Fatal(err)
	}
	if h.ExternalID != "4" || h.Backend != "slurm" {
		t.Fatalf("handle %+v, want job 4 from the recorded answer", h)
	}
	sub := f.lastSub
	env := sub["environment"].(map[string]any)
	var sent backends.Task
	if err := json.Unmarshal([]byte(env["HORIZONS_TASK"].(string)), &sent); err != nil || sent.ID != task.ID || sent.GPUs != 2 {
		t.Errorf("HORIZONS_TASK %v (%v)", env["HORIZONS_TASK"], err)
	}
	if env["OMP_NUM_THREADS"] != "4" || env["PATH"] == nil {
		t.Errorf("environment %v", env)
	}
	// 90 min 1 s rounds up to 91 minutes; GPUs as gres.
	if sub["time_limit"] != 91.0 || sub["gres"] != "gpu:2" || sub["memory_per_node"] != 4096.0 || sub["partition"] != "debug" ||
		sub["current_working_directory"] != "/scratch/horizons" || sub["name"] != "horizons-job-1-1" {
		t.Errorf("job properties %v", sub)
	}
	if s := sub["script"].(string); !strings.Contains(s, "exec horizons-agent run --result '/scratch/horizons'/horizons-\"${SLURM_JOB_ID}\".result.json") {
		t.Errorf("script %q", s)
	}
	st, err := d.Status(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	// Recorded: COMPLETED, exit_code 0, nodes localnode, start 1795719890.
	if st.State != backends.TaskCompleted || st.Progress != 100 || *st.ExitCode != 0 || st.Node != "localnode" ||
		!st.StartedAt.Equal(time.Unix(1795719890, 0)) {
		t.Errorf("status %+v", st)
	}
	if err := d.Cancel(ctx, h); err != nil {
		t.Errorf("cancel of a finished job: %v", err)
	}
	if _, err := d.Recover(ctx, h); err != nil {
		t.Errorf("recover: %v", err)
	}
	if err := d.Ping(ctx); err != nil {
		t.Errorf("ping: %v", err)
	}
}

func TestStatesAndExitCodes(t *testing.T) {
	f, srv := newFake(t)
	d, _ := newDriver(t, srv.URL, nil)
	// Rows of the table observed on the real 22.05 cluster.
	cases := []struct {
		state, reason string
		exit          any
		want          backends.TaskState
		code          int
		msg           string
	}{
		{"COMPLETED", "None", 0, backends.TaskCompleted, 0, ""},
		{"FAILED", "NonZeroExitCode", 768, backends.TaskFailed, 3, "exit code 3"},
		{"FAILED", "NonZeroExitCode", 65280, backends.TaskFailed, 255, "exit code 255"},
		{"FAILED", "NonZeroExitCode", 32512, backends.TaskFailed, 127, "exit code 127"},
		{"FAILED", "JobLaunchFailure", 9, backends.TaskFailed, 137, "killed by signal 9"},
		{"CANCELLED", "None", 15, backends.TaskCancelled, 143, "killed by signal 15"},
		{"TIMEOUT", "TimeLimit", 15, backends.TaskTimeout, 143, "reason TimeLimit"},
		{"PENDING", "Resources", 0, backends.TaskPending, -1, "pending: Resources"},
		{"RUNNING", "None", nil, backends.TaskRunning, -1, ""},
		{"COMPLETING", "None", 0, backends.TaskRunning, -1, ""},
		{"NODE_FAIL", "None", 0, backends.TaskFailed, 0, "ended NODE_FAIL"},
		{"OUT_OF_MEMORY", "OutOfMemory", 0, backends.TaskFailed, 0, "OutOfMemory"},
		{"PREEMPTED", "None", 0, backends.TaskFailed, 0, "PREEMPTED"},
	}
	for _, c := range cases {
		f.mu.Lock()
		f.jobs["4"] = withJob(t, map[string]any{"job_state": c.state, "state_reason": c.reason, "exit_code": c.exit})
		f.mu.Unlock()
		st, err := d.Status(context.Background(), backends.Handle{Backend: "slurm", ExternalID: "4"})
		if err != nil {
			t.Fatal(err)
		}
		if st.State != c.want || !strings.Contains(st.Message, c.msg) {
			t.Errorf("%s/%s/%v: %s %q, want %s containing %q", c.state, c.reason, c.exit, st.State, st.Message, c.want, c.msg)
		}
		if c.code >= 0 && (st.ExitCode == nil || *st.ExitCode != c.code) {
			t.Errorf("%s/%v: exit code %v, want %d", c.state, c.exit, st.ExitCode, c.code)
		}
		if c.code < 0 && st.ExitCode != nil {
			t.Errorf("%s: exit code %d for a live job", c.state, *st.ExitCode)
		}
		if !st.State.Terminal() && !st.EndedAt.IsZero() {
			t.Errorf("%s: live job has an end time %v (Slurm reports start+365 d)", c.state, st.EndedAt)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	_, srv := newFake(t)
	ctx := context.Background()
	d, _ := newDriver(t, srv.URL, nil)
	_, err := d.Status(ctx, backends.Handle{Backend: "slurm", ExternalID: "99999"})
	if !errors.Is(err, backends.ErrTaskNotFound) || !strings.Contains(err.Error(), "MinJobAge") {
		t.Errorf("unknown job: %v", err)
	}
	if err := d.Cancel(ctx, backends.Handle{Backend: "slurm", ExternalID: "99999"}); !errors.Is(err, backends.ErrTaskNotFound) {
		t.Errorf("cancel unknown job: %v", err)
	}
	if _, err := d.Status(ctx, backends.Handle{Backend: "slurm", ExternalID: "../ping"}); !errors.Is(err, backends.ErrTaskNotFound) {
		t.Errorf("path-like job id: %v", err)
	}
	bad, _ := newDriver(t, srv.URL, func(c *slurm.Config) { c.Partition = "gpu-nonexistent" })
	_, err = bad.Submit(ctx, task)
	if !errors.Is(err, backends.ErrInvalidTask) || !strings.Contains(err.Error(), `partition is "gpu-nonexistent"`) {
		t.Errorf("bad partition: %v", err)
	}
	expired, logs := newDriver(t, srv.URL, func(c *slurm.Config) { c.Token = "expired-token-abc" })
	_, err = expired.Submit(ctx, task)
	if !errors.Is(err, backends.ErrUnauthorized) || !strings.Contains(err.Error(), "scontrol token") {
		t.Errorf("expired token: %v", err)
	}
	if strings.Contains(err.Error(), "expired-token-abc") || strings.Contains(logs.String(), "expired-token-abc") {
		t.Errorf("token leaked: %v / %s", err, logs)
	}
	noName, _ := newDriver(t, srv.URL, func(c *slurm.Config) {
		c.TokenFunc = func(context.Context) (string, error) { return "", errors.New("vault sealed") }
	})
	if _, err := noName.Status(ctx, backends.Handle{ExternalID: "4"}); !errors.Is(err, backends.ErrUnauthorized) {
		t.Errorf("token refresh failure: %v", err)
	}
}

func TestRetries(t *testing.T) {
	f, srv := newFake(t)
	ctx := context.Background()
	d, logs := newDriver(t, srv.URL, func(c *slurm.Config) { c.RetryMax = 3 })
	var n atomic.Int64
	f.fail = func(r *http.Request) (int, []byte, bool) {
		if n.Add(1) <= 2 {
			return http.StatusServiceUnavailable, []byte("busy"), true
		}
		return 0, nil, false
	}
	if _, err := d.Status(ctx, backends.Handle{ExternalID: "4"}); err != nil {
		t.Fatalf("503 twice then OK: %v", err)
	}
	if got := f.calls.Load(); got != 3 {
		t.Errorf("%d requests for two 503s and a success, want 3", got)
	}
	if !strings.Contains(logs.String(), "slurmrestd retry") || strings.Contains(logs.String(), token) {
		t.Errorf("logs: %s", logs)
	}

	// slurmctld down: 500 "unable to load" is retried, then ErrUnavailable.
	f.calls.Store(0)
	f.fail = func(r *http.Request) (int, []byte, bool) {
		return http.StatusInternalServerError, fixture(t, "v0038-err-ctld-down.json"), true
	}
	_, err := d.Status(ctx, backends.Handle{ExternalID: "4"})
	if !errors.Is(err, backends.ErrUnavailable) || f.calls.Load() != 4 {
		t.Errorf("controller down: %v after %d requests, want ErrUnavailable after 4", err, f.calls.Load())
	}

	// A 500 for an unknown job and a 400 are final: one request each.
	f.fail = nil
	for _, c := range []struct {
		name string
		fail func(*http.Request) (int, []byte, bool)
		want error
	}{
		{"unknown job", nil, backends.ErrTaskNotFound},
		{"400", func(*http.Request) (int, []byte, bool) { return 400, []byte("Unable to parse query."), true }, backends.ErrInvalidTask},
		{"401", func(*http.Request) (int, []byte, bool) { return 401, []byte("Authentication failure"), true }, backends.ErrUnauthorized},
	} {
		f.calls.Store(0)
		f.fail = c.fail
		_, err := d.Status(ctx, backends.Handle{ExternalID: "99999"})
		if !errors.Is(err, c.want) || f.calls.Load() != 1 {
			t.Errorf("%s: %v after %d requests, want %v after 1", c.name, err, f.calls.Load(), c.want)
		}
	}

	// Connection refused: retried, then ErrUnavailable naming the URL.
	srv2 := httptest.NewServer(http.NotFoundHandler())
	url := srv2.URL
	srv2.Close()
	down, _ := newDriver(t, url, func(c *slurm.Config) { c.RetryMax = 1 })
	if _, err := down.Status(ctx, backends.Handle{ExternalID: "4"}); !errors.Is(err, backends.ErrUnavailable) || !strings.Contains(err.Error(), url) {
		t.Errorf("server down: %v", err)
	}
}

func TestCapacity(t *testing.T) {
	f, srv := newFake(t)
	d, _ := newDriver(t, srv.URL, nil)
	h, err := d.Submit(context.Background(), task) // job 4, 2 GPUs
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.jobs["4"] = withJob(t, map[string]any{"job_state": "RUNNING", "name": "horizons-job-1-1"})
	f.jobs["5"] = withJob(t, map[string]any{"job_id": 5, "job_state": "PENDING", "name": "horizons-job-2-1"})
	f.jobs["6"] = withJob(t, map[string]any{"job_id": 6, "job_state": "RUNNING", "name": "someone-elses"})
	f.mu.Unlock()
	c, err := d.Capacity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Running != 1 || c.Pending != 1 || c.TotalGPUs != 4 || c.FreeGPUs != 2 {
		t.Errorf("capacity %+v with %s running on 2 GPUs", c, h.ExternalID)
	}
}

func TestConfigErrors(t *testing.T) {
	good := slurm.Config{URL: "http://127.0.0.1:6820", UserName: "root", Token: "t", WorkDir: "/w"}
	for field, edit := range map[string]func(*slurm.Config){
		"URL":         func(c *slurm.Config) { c.URL = "127.0.0.1:6820" },
		"credentials": func(c *slurm.Config) { c.URL = "http://root:pw@127.0.0.1:6820" },
		"UserName":    func(c *slurm.Config) { c.UserName = "" },
		"Token":       func(c *slurm.Config) { c.Token = "" },
		"WorkDir":     func(c *slurm.Config) { c.WorkDir = "relative" },
		"APIVersion":  func(c *slurm.Config) { c.APIVersion = "v0.0.39" },
		"MaxGPUs":     func(c *slurm.Config) { c.MaxGPUs = -1 },
	} {
		c := good
		edit(&c)
		_, err := slurm.New(&c)
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("bad %s: %v", field, err)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("error repeats credentials: %v", err)
		}
	}
	if _, err := slurm.New(nil); err == nil {
		t.Error("nil config accepted")
	}
}

func TestWaitStatus(t *testing.T) {
	for raw, want := range map[int][2]int{0: {0, 0}, 256: {1, 0}, 768: {3, 0}, 65280: {255, 0}, 9: {137, 9}, 15: {143, 15}, 10: {138, 10}} {
		if e, s := slurm.WaitStatus(raw); e != want[0] || s != want[1] {
			t.Errorf("WaitStatus(%d) = %d, %d; want %d, %d", raw, e, s, want[0], want[1])
		}
	}
}

func TestConfigNeverPrintsToken(t *testing.T) {
	c := slurm.Config{URL: "http://h:1", UserName: "u", Token: token, WorkDir: "/w"}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "cfg", c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%v", &c), logs.String()} {
		if strings.Contains(s, token) {
			t.Errorf("token printed: %s", s)
		}
		if !strings.Contains(s, "http://h:1") {
			t.Errorf("config print lacks the URL: %s", s)
		}
	}
}

// TestSubmitRetryNoDuplicate: a submit whose answer is lost is not sent
// blindly again: the driver first looks for the job by name.
func TestSubmitRetryNoDuplicate(t *testing.T) {
	ctx := context.Background()
	t.Run("created before the failure", func(t *testing.T) {
		f, srv := newFake(t)
		d, logs := newDriver(t, srv.URL, func(c *slurm.Config) { c.RetryMax = 3 })
		var posts atomic.Int64
		f.fail = func(r *http.Request) (int, []byte, bool) {
			if r.Method != http.MethodPost {
				return 0, nil, false
			}
			if posts.Add(1) == 1 {
				// slurmctld took the job, then the answer was lost.
				f.mu.Lock()
				f.jobs["77"] = withJob(t, map[string]any{"job_id": 77, "name": "horizons-" + task.ID, "job_state": "PENDING"})
				f.mu.Unlock()
				return http.StatusBadGateway, []byte("bad gateway"), true
			}
			return 0, nil, false
		}
		h, err := d.Submit(ctx, task)
		if err != nil {
			t.Fatal(err)
		}
		if h.ExternalID != "77" || posts.Load() != 1 {
			t.Fatalf("handle %s after %d POSTs, want the job the lost submit created (77) after 1", h.ExternalID, posts.Load())
		}
		if !strings.Contains(logs.String(), "checking for the job") || strings.Contains(logs.String(), token) {
			t.Errorf("logs: %s", logs)
		}
	})
	t.Run("not created", func(t *testing.T) {
		f, srv := newFake(t)
		d, _ := newDriver(t, srv.URL, func(c *slurm.Config) { c.RetryMax = 3 })
		var posts atomic.Int64
		f.fail = func(r *http.Request) (int, []byte, bool) {
			if r.Method == http.MethodPost && posts.Add(1) <= 2 {
				return http.StatusInternalServerError, fixture(t, "v0038-err-ctld-down.json"), true
			}
			return 0, nil, false
		}
		h, err := d.Submit(ctx, task)
		if err != nil {
			t.Fatal(err)
		}
		if posts.Load() != 3 || h.ExternalID == "" {
			t.Fatalf("handle %+v after %d POSTs, want a job after 3 (two failures)", h, posts.Load())
		}
	})
	t.Run("final error", func(t *testing.T) {
		f, srv := newFake(t)
		d, _ := newDriver(t, srv.URL, func(c *slurm.Config) { c.RetryMax = 3 })
		var posts atomic.Int64
		f.fail = func(r *http.Request) (int, []byte, bool) {
			if r.Method == http.MethodPost {
				posts.Add(1)
				return http.StatusTooManyRequests, []byte("slow down"), true
			}
			return 0, nil, false
		}
		if _, err := d.Submit(ctx, task); err == nil || posts.Load() != 1 {
			t.Fatalf("429: %v after %d POSTs, want an error after 1 (4xx is never retried)", err, posts.Load())
		}
	})
}

func TestNeverRetry4xx(t *testing.T) {
	for _, code := range []int{400, 401, 403, 404, 409, 429} {
		f, srv := newFake(t)
		d, _ := newDriver(t, srv.URL, func(c *slurm.Config) { c.RetryMax = 3 })
		f.fail = func(*http.Request) (int, []byte, bool) { return code, []byte("no"), true }
		_, err := d.Status(context.Background(), backends.Handle{ExternalID: "4"})
		if err == nil || f.calls.Load() != 1 {
			t.Errorf("HTTP %d: %v after %d requests, want an error after 1", code, err, f.calls.Load())
		}
	}
}

func TestCallTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	d, _ := newDriver(t, srv.URL, func(c *slurm.Config) { c.CallTimeout = 50 * time.Millisecond; c.RetryMax = 2 })
	_, err := d.Status(context.Background(), backends.Handle{ExternalID: "4"})
	if !errors.Is(err, backends.ErrUnavailable) || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("hanging server: %v, want ErrUnavailable from the per-call deadline", err)
	}
}

// TestTokenRefreshHook: TokenFunc is asked before every request, so a
// rotated token is used from the next call on.
func TestTokenRefreshHook(t *testing.T) {
	_, srv := newFake(t)
	var calls atomic.Int64
	current := atomic.Value{}
	current.Store("expired-token")
	d, logs := newDriver(t, srv.URL, func(c *slurm.Config) {
		c.Token = ""
		c.TokenFunc = func(context.Context) (string, error) { calls.Add(1); return current.Load().(string), nil }
	})
	ctx := context.Background()
	_, err := d.Status(ctx, backends.Handle{ExternalID: "4"})
	if !errors.Is(err, backends.ErrUnauthorized) || strings.Contains(err.Error(), "expired-token") {
		t.Fatalf("stale token: %v, want ErrUnauthorized without the token", err)
	}
	current.Store(token)
	if st, err := d.Status(ctx, backends.Handle{ExternalID: "4"}); err != nil || st.State != backends.TaskCompleted {
		t.Fatalf("after refresh: %+v, %v", st, err)
	}
	if calls.Load() < 2 {
		t.Errorf("TokenFunc called %d times for two calls", calls.Load())
	}
	if strings.Contains(logs.String(), token) || strings.Contains(logs.String(), "expired-token") {
		t.Errorf("logs carry a token: %s", logs)
	}
}

// TestSubmitIdempotent: a second Submit of a task id returns the job the
// first created (a caller that crashed before storing the handle), unless
// NoDuplicateCheck is set.
func TestSubmitIdempotent(t *testing.T) {
	for _, skip := range []bool{false, true} {
		f, srv := newFake(t)
		d, _ := newDriver(t, srv.URL, func(c *slurm.Config) { c.NoDuplicateCheck = skip })
		f.mu.Lock()
		f.jobs["55"] = withJob(t, map[string]any{"job_id": 55, "name": "horizons-" + task.ID, "job_state": "RUNNING"})
		f.mu.Unlock()
		var posts atomic.Int64
		f.fail = func(r *http.Request) (int, []byte, bool) {
			if r.Method == http.MethodPost {
				posts.Add(1)
			}
			return 0, nil, false
		}
		h, err := d.Submit(context.Background(), task)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case !skip && (h.ExternalID != "55" || posts.Load() != 0):
			t.Errorf("resubmit: job %s after %d POSTs, want the earlier job 55 and no POST", h.ExternalID, posts.Load())
		case skip && (h.ExternalID == "55" || posts.Load() != 1):
			t.Errorf("NoDuplicateCheck: job %s after %d POSTs, want a new job", h.ExternalID, posts.Load())
		}
	}
}
