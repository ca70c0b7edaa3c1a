package tapis_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/backendtest"
	"github.com/cosmic-horizons/horizons/backends/tapis"
	"github.com/cosmic-horizons/horizons/backends/tapis/tapistest"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func config(srv *tapistest.Server, logs io.Writer) *tapis.Config {
	c := srv.Config()
	if logs == nil {
		logs = io.Discard
	}
	return &tapis.Config{
		URL: srv.URL, Username: c.Username, Password: c.Password,
		AppID: c.AppID, AppVersion: c.AppVersion, ExecSystemID: "tapistest-exec",
		MaxGPUs: 4, MaxMemoryMB: 65536, MaxWallTime: 24 * time.Hour,
		Agents:       []string{"steps", tapistest.AgentFail, tapistest.AgentWait, tapistest.AgentTimeout, tapistest.AgentBlock},
		RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func open(t *testing.T, cfg *tapis.Config) (*backends.Backend, *tapis.Driver) {
	t.Helper()
	d, err := tapis.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return backends.New(d, &backends.Options{Logger: cfg.Logger}), d
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, backendtest.Harness{
		New: func(t *testing.T) backendtest.Instance {
			srv := tapistest.New(t, nil)
			b, _ := open(t, config(srv, nil))
			return backendtest.Instance{Backend: b}
		},
		Complete: func(id string) backends.Task {
			return backends.Task{ID: id, Agent: "steps", DatasetID: "VLASS2.1.T10t01"}
		},
		Fail: func(id string) backends.Task {
			return backends.Task{ID: id, Agent: tapistest.AgentFail, DatasetID: "ds"}
		},
		Long: func(id string) backends.Task {
			return backends.Task{ID: id, Agent: tapistest.AgentWait, DatasetID: "ds", GPUs: 2}
		},
		Poll: time.Millisecond,
	})
}

// wait polls until the task is terminal and returns the states seen.
func wait(t *testing.T, b *backends.Backend, h backends.Handle) (backends.Status, []backends.TaskState) {
	t.Helper()
	var seen []backends.TaskState
	for range 100 {
		st, err := b.Status(ctx(t), h)
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) == 0 || seen[len(seen)-1] != st.State {
			seen = append(seen, st.State)
		}
		if st.State.Terminal() {
			return st, seen
		}
	}
	t.Fatalf("task %s never ended; states %v", h.ExternalID, seen)
	return backends.Status{}, nil
}

func TestSubmitBodyAndResult(t *testing.T) {
	srv := tapistest.New(t, nil)
	b, d := open(t, config(srv, nil))
	task := backends.Task{ID: "job-1-1", Agent: "steps", DatasetID: "VLASS2.1.T10t01", GPUs: 2, MemoryMB: 8192,
		WallTime: 90*time.Minute + time.Second, Params: json.RawMessage(`{"threshold":5}`), Env: map[string]string{"SECRET_KEY": "s3cr3t-value"}}
	h, err := b.Submit(ctx(t), task)
	if err != nil {
		t.Fatal(err)
	}
	jobs := srv.Jobs()
	if len(jobs) != 1 || jobs[0].UUID != h.ExternalID {
		t.Fatalf("server jobs %+v, handle %+v", jobs, h)
	}
	req := jobs[0].Submit
	if req["name"] != "horizons-job-1-1" || req["appId"] != "horizons-agent" || req["appVersion"] != "1.0" || req["execSystemId"] != "tapistest-exec" {
		t.Errorf("submit body %v", req)
	}
	if req["maxMinutes"] != 91.0 || req["memoryMB"] != 8192.0 || req["nodeCount"] != 1.0 {
		t.Errorf("maxMinutes %v memoryMB %v nodeCount %v, want 91 8192 1", req["maxMinutes"], req["memoryMB"], req["nodeCount"])
	}
	ps := req["parameterSet"].(map[string]any)
	if got := fmt.Sprint(ps["schedulerOptions"]); !strings.Contains(got, "--gres=gpu:2") {
		t.Errorf("schedulerOptions %s, want --gres=gpu:2", got)
	}
	env := map[string]string{}
	for _, v := range ps["envVariables"].([]any) {
		kv := v.(map[string]any)
		env[kv["key"].(string)] = kv["value"].(string)
	}
	var sent backends.Task
	if err := json.Unmarshal([]byte(env["HORIZONS_TASK"]), &sent); err != nil {
		t.Fatalf("HORIZONS_TASK: %v", err)
	}
	if sent.ID != task.ID || sent.Agent != task.Agent || string(sent.Params) != `{"threshold":5}` || sent.Env != nil {
		t.Errorf("HORIZONS_TASK %+v (Env must be stripped)", sent)
	}
	if env["SECRET_KEY"] != "s3cr3t-value" || env["HORIZONS_RESULT_FILE"] != tapis.DefaultResultFile || env["HORIZONS_TASK_ID"] != "job-1-1" {
		t.Errorf("env %v", env)
	}

	if got := fmt.Sprint(ps["appArgs"]); !strings.Contains(got, "run --result horizons.result.json") {
		t.Errorf("appArgs %s", got)
	}
	st, seen := wait(t, b, h)
	if st.State != backends.TaskCompleted || st.Progress != 100 || st.ExitCode == nil || *st.ExitCode != 0 {
		t.Fatalf("final %+v", st)
	}
	want := []backends.TaskState{backends.TaskPending, backends.TaskRunning, backends.TaskCompleted}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("states %v, want %v", seen, want)
	}
	var res map[string]any
	if err := json.Unmarshal(st.Result, &res); err != nil || res["tapis_job"] != h.ExternalID || res["task_id"] != "job-1-1" {
		t.Errorf("result %s (%v)", st.Result, err)
	}
	if st.StartedAt.IsZero() || st.EndedAt.Before(st.StartedAt) {
		t.Errorf("times %v .. %v", st.StartedAt, st.EndedAt)
	}
	// The result is read once and kept.
	resultPath := "/v3/jobs/" + h.ExternalID + "/output/download/horizons.result.json"
	downloads := srv.Count(http.MethodGet, resultPath)
	if _, err := b.Status(ctx(t), h); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count(http.MethodGet, resultPath); n != downloads || n != 1 {
		t.Errorf("result downloaded %d then %d times, want once", downloads, n)
	}

	// History, output listing and download.
	hist, err := d.History(ctx(t), h.ExternalID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var evs []string
	for _, e := range hist {
		evs = append(evs, e.EventDetail)
		if e.Created.IsZero() || e.Event != "JOB_NEW_STATUS" {
			t.Errorf("history entry %+v", e)
		}
	}
	if got := strings.Join(evs, ","); got != strings.Join(tapis.Statuses[:7], ",")+",ARCHIVING,FINISHED" {
		t.Errorf("history %s", got)
	}
	if page, err := d.History(ctx(t), h.ExternalID, 2, 1); err != nil || len(page) != 2 || page[0].EventDetail != "PROCESSING_INPUTS" {
		t.Errorf("history page = %+v, %v", page, err)
	}
	files, err := d.Outputs(ctx(t), h.ExternalID, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
		if f.LastModified.IsZero() || f.Size <= 0 || f.Type != "file" {
			t.Errorf("output entry %+v", f)
		}
	}
	if fmt.Sprint(names) != "[horizons.progress.json horizons.result.json tapisjob.out]" {
		t.Errorf("outputs %v", names)
	}
	rc, err := d.Download(ctx(t), h.ExternalID, "tapisjob.out")
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(rc)
	rc.Close()
	if !strings.Contains(string(out), "task job-1-1 done") {
		t.Errorf("tapisjob.out = %q", out)
	}
	if _, err := d.Download(ctx(t), h.ExternalID, "missing.txt"); !errors.Is(err, backends.ErrTaskNotFound) || !strings.Contains(err.Error(), "FILES_NOT_FOUND") {
		t.Errorf("download of a missing file = %v, want ErrTaskNotFound with Tapis's message", err)
	}
	if s, c, err := d.JobStatus(ctx(t), h.ExternalID); err != nil || s != "FINISHED" || c != "NORMAL_COMPLETION" {
		t.Errorf("JobStatus = %s %s %v", s, c, err)
	}
	if v := srv.Violations(); len(v) != 0 {
		t.Errorf("spec violations: %v", v)
	}
}

func TestAllStatesMapped(t *testing.T) {
	if len(tapis.Statuses) != 13 {
		t.Fatalf("%d statuses, want the 13 of Tapis", len(tapis.Statuses))
	}
	want := map[string][2]backends.TaskState{ // before and after the remote job started
		"PENDING": {backends.TaskPending, backends.TaskPending}, "PROCESSING_INPUTS": {backends.TaskPending, backends.TaskPending},
		"STAGING_INPUTS": {backends.TaskPending, backends.TaskPending}, "STAGING_JOB": {backends.TaskPending, backends.TaskPending},
		"SUBMITTING_JOB": {backends.TaskPending, backends.TaskPending}, "QUEUED": {backends.TaskPending, backends.TaskPending},
		"RUNNING": {backends.TaskRunning, backends.TaskRunning}, "ARCHIVING": {backends.TaskRunning, backends.TaskRunning},
		"BLOCKED": {backends.TaskPending, backends.TaskRunning}, "PAUSED": {backends.TaskPending, backends.TaskRunning},
		"FINISHED": {backends.TaskCompleted, backends.TaskCompleted}, "CANCELLED": {backends.TaskCancelled, backends.TaskCancelled},
		"FAILED": {backends.TaskFailed, backends.TaskFailed},
	}
	for _, s := range tapis.Statuses {
		w, ok := want[s]
		if !ok {
			t.Errorf("status %s not expected", s)
			continue
		}
		if got := tapis.State(s, "", false); got != w[0] {
			t.Errorf("State(%s, not started) = %s, want %s", s, got, w[0])
		}
		if got := tapis.State(s, "", true); got != w[1] {
			t.Errorf("State(%s, started) = %s, want %s", s, got, w[1])
		}
	}
	if got := tapis.State("FAILED", "SCHEDULER_TIMEOUT", true); got != backends.TaskTimeout {
		t.Errorf("FAILED/SCHEDULER_TIMEOUT = %s, want TIMEOUT", got)
	}
	if got := tapis.State("FAILED", "SCHEDULER_OUT_OF_MEMORY", true); got != backends.TaskFailed {
		t.Errorf("FAILED/SCHEDULER_OUT_OF_MEMORY = %s, want FAILED", got)
	}
}

func TestScriptedOutcomes(t *testing.T) {
	srv := tapistest.New(t, nil)
	b, _ := open(t, config(srv, nil))
	cases := []struct {
		agent string
		state backends.TaskState
		msg   string
	}{
		{tapistest.AgentFail, backends.TaskFailed, "condition JOB_REMOTE_OUTCOME_ERROR, remote job 400"},
		{tapistest.AgentFail, backends.TaskFailed, "; agent: agent fails: synthetic failure on purpose"},
		{tapistest.AgentTimeout, backends.TaskTimeout, "condition SCHEDULER_TIMEOUT"},
		{tapistest.AgentBlock, backends.TaskCompleted, ""},
	}
	for i, c := range cases {
		h, err := b.Submit(ctx(t), backends.Task{ID: fmt.Sprint("t", i), Agent: c.agent, DatasetID: "ds"})
		if err != nil {
			t.Fatal(err)
		}
		st, seen := wait(t, b, h)
		if st.State != c.state || !strings.Contains(st.Message, c.msg) {
			t.Errorf("%s: %s %q, want %s containing %q", c.agent, st.State, st.Message, c.state, c.msg)
		}
		if c.agent == tapistest.AgentBlock {
			// BLOCKED after the remote job started stays RUNNING.
			want := []backends.TaskState{backends.TaskPending, backends.TaskRunning, backends.TaskCompleted}
			if fmt.Sprint(seen) != fmt.Sprint(want) {
				t.Errorf("blocked job states %v, want %v", seen, want)
			}
		}
		if st.State != backends.TaskCompleted && st.Progress >= 100 {
			t.Errorf("%s: progress %v at %s", c.agent, st.Progress, st.State)
		}
	}
}

func TestCancelOfFinishedIs409Tolerated(t *testing.T) {
	srv := tapistest.New(t, nil)
	b, _ := open(t, config(srv, nil))
	h, err := b.Submit(ctx(t), backends.Task{ID: "c", Agent: "steps", DatasetID: "ds"})
	if err != nil {
		t.Fatal(err)
	}
	wait(t, b, h)
	if err := b.Cancel(ctx(t), h); err != nil {
		t.Fatalf("cancel of a finished job: %v", err)
	}
	var got int
	for _, r := range srv.Requests() {
		if strings.HasSuffix(r.Path, "/cancel") {
			got = r.Status
		}
	}
	if got != http.StatusConflict {
		t.Errorf("server answered the cancel with %d, want 409", got)
	}
}

func TestErrorEnvelopes(t *testing.T) {
	srv := tapistest.New(t, nil)
	cfg := config(srv, nil)
	cfg.AppVersion = "9.9"
	b, _ := open(t, cfg)
	_, err := b.Submit(ctx(t), backends.Task{ID: "x", Agent: "steps", DatasetID: "ds"})
	var ae *tapis.APIError
	if !errors.Is(err, backends.ErrInvalidTask) || !errors.As(err, &ae) {
		t.Fatalf("submit to an unknown app version = %v, want ErrInvalidTask with an *APIError", err)
	}
	if ae.StatusCode != 400 || ae.Status != "error" || ae.Version != "1.8.0" || !strings.Contains(ae.Message, "APPLIB_NOT_FOUND") || !strings.Contains(err.Error(), "check that app horizons-agent version 9.9") {
		t.Errorf("APIError %+v; message %q", ae, err)
	}
	_, err = b.Status(ctx(t), backends.Handle{Backend: "tapis", ExternalID: "0c0ffee0-0000-0000-0000-000000000000-007"})
	if !errors.Is(err, backends.ErrTaskNotFound) || !strings.Contains(err.Error(), "JOBS_JOB_NOT_FOUND") {
		t.Errorf("unknown job = %v, want ErrTaskNotFound carrying Tapis's message", err)
	}
	// A path-hostile id never reaches the server.
	before := len(srv.Requests())
	if _, err := b.Status(ctx(t), backends.Handle{Backend: "tapis", ExternalID: "../list"}); !errors.Is(err, backends.ErrTaskNotFound) {
		t.Errorf("bad uuid = %v", err)
	}
	if len(srv.Requests()) != before {
		t.Error("a malformed uuid was sent to the server")
	}
}

func TestRetries(t *testing.T) {
	srv := tapistest.New(t, nil)
	logs := &syncBuffer{}
	cfg := config(srv, logs)
	cfg.RetryMax = 2
	b, d := open(t, cfg)
	h, err := b.Submit(ctx(t), backends.Task{ID: "r", Agent: tapistest.AgentWait, DatasetID: "ds"})
	if err != nil {
		t.Fatal(err)
	}
	path := "/v3/jobs/" + h.ExternalID
	// Two gateway errors, then success: retried.
	srv.FailNext(2, http.StatusServiceUnavailable)
	n := srv.Count(http.MethodGet, path)
	if _, err := b.Status(ctx(t), h); err != nil {
		t.Fatalf("status after two 503s: %v", err)
	}
	if got := srv.Count(http.MethodGet, path) - n; got != 3 {
		t.Errorf("%d GETs for one status with two 503s, want 3", got)
	}
	// A run of 500s longer than RetryMax: retried, then surfaced.
	srv.FailNext(10, http.StatusInternalServerError)
	n = srv.Count(http.MethodGet, path)
	_, err = b.Status(ctx(t), h)
	var ae *tapis.APIError
	if !errors.Is(err, backends.ErrUnavailable) || !errors.As(err, &ae) || ae.StatusCode != 500 || !strings.Contains(err.Error(), "TAPIS_JOBS_INTERNAL_ERROR") {
		t.Errorf("status during a 500 run = %v, want ErrUnavailable with Tapis's message", err)
	}
	if got := srv.Count(http.MethodGet, path) - n; got != 3 {
		t.Errorf("%d GETs during a 500 run with RetryMax 2, want 3", got)
	}
	srv.FailNext(0, 0)
	posts := func() int { return srv.Count(http.MethodPost, "/v3/jobs/submit") }
	jobs := func() int { return len(srv.Jobs()) }
	// A 500 to a submit is not blindly retried: the driver looks for the
	// job first, and sends the submit again only when Tapis has none.
	srv.FailNextMatching(http.MethodPost, "/v3/jobs/submit", 1, http.StatusInternalServerError)
	n, nj := posts(), jobs()
	if _, err := b.Submit(ctx(t), backends.Task{ID: "s1", Agent: "steps", DatasetID: "ds"}); err != nil {
		t.Errorf("submit after a 500 that created nothing: %v", err)
	}
	if posts()-n != 2 || jobs()-nj != 1 {
		t.Errorf("%d submits and %d jobs around a 500 before creation, want 2 and 1", posts()-n, jobs()-nj)
	}
	// A 500 after Tapis created the job: found by name, not created twice.
	srv.LoseNextMatching(http.MethodPost, "/v3/jobs/submit", 1, http.StatusInternalServerError)
	n, nj = posts(), jobs()
	h2, err := b.Submit(ctx(t), backends.Task{ID: "s2", Agent: "steps", DatasetID: "ds"})
	if err != nil {
		t.Fatalf("submit whose answer was lost: %v", err)
	}
	if all := srv.Jobs(); posts()-n != 1 || jobs()-nj != 1 || all[len(all)-1].UUID != h2.ExternalID {
		t.Errorf("%d submits, %d jobs, handle %s; want 1, 1 and the created job", posts()-n, jobs()-nj, h2.ExternalID)
	}
	// Submitting the same task again returns the same job.
	if h3, err := b.Submit(ctx(t), backends.Task{ID: "s2", Agent: "steps", DatasetID: "ds"}); err != nil || h3.ExternalID != h2.ExternalID || jobs()-nj != 1 {
		t.Errorf("resubmit of task s2 = %v, %v; want the same job %s", h3.ExternalID, err, h2.ExternalID)
	}
	// A submit that keeps failing is surfaced after one more try.
	srv.FailNextMatching(http.MethodPost, "/v3/jobs/submit", 5, http.StatusInternalServerError)
	n, nj = posts(), jobs()
	if _, err := b.Submit(ctx(t), backends.Task{ID: "s3", Agent: "steps", DatasetID: "ds"}); !errors.Is(err, backends.ErrUnavailable) || !strings.Contains(err.Error(), "may or may not have been created") {
		t.Errorf("submit during a 500 run = %v", err)
	}
	if posts()-n != 2 || jobs() != nj {
		t.Errorf("%d submits and %d new jobs during a 500 run, want 2 and 0", posts()-n, jobs()-nj)
	}
	srv.FailNext(0, 0)
	// A gateway 502 never reached the Jobs service: retried at once.
	srv.FailNextMatching(http.MethodPost, "/v3/jobs/submit", 1, http.StatusBadGateway)
	n, nj = posts(), jobs()
	if _, err := b.Submit(ctx(t), backends.Task{ID: "s4", Agent: "steps", DatasetID: "ds"}); err != nil {
		t.Errorf("submit after one 502: %v", err)
	}
	if posts()-n != 2 || jobs()-nj != 1 {
		t.Errorf("%d submits and %d jobs around a 502, want 2 and 1", posts()-n, jobs()-nj)
	}
	// 4xx is never retried.
	n = srv.Count(http.MethodGet, "/v3/jobs/")
	d.GetJob(ctx(t), "nope-404")
	if got := srv.Count(http.MethodGet, "/v3/jobs/") - n; got != 1 {
		t.Errorf("404 sent %d times, want 1", got)
	}
	if !strings.Contains(logs.String(), "tapis retry") {
		t.Error("retries were not logged")
	}
}

func TestUnreachable(t *testing.T) {
	srv := tapistest.New(t, nil)
	cfg := config(srv, nil)
	srv.Close()
	cfg.RetryMax = 1
	b, _ := open(t, cfg)
	_, err := b.Submit(ctx(t), backends.Task{ID: "u", Agent: "steps", DatasetID: "ds"})
	if !errors.Is(err, backends.ErrUnavailable) || strings.Contains(err.Error(), cfg.Password) {
		t.Errorf("submit to a closed server = %v, want ErrUnavailable without the password", err)
	}
}

func TestExpiredTokenIsRefreshed(t *testing.T) {
	srv := tapistest.New(t, nil)
	b, _ := open(t, config(srv, nil))
	h, err := b.Submit(ctx(t), backends.Task{ID: "e", Agent: tapistest.AgentWait, DatasetID: "ds"})
	if err != nil {
		t.Fatal(err)
	}
	if srv.TokensIssued() != 1 {
		t.Fatalf("%d tokens minted for the first call, want 1", srv.TokensIssued())
	}
	srv.ExpireTokens()
	if _, err := b.Status(ctx(t), h); err != nil {
		t.Fatalf("status with an expired token: %v (want a refresh and a retry)", err)
	}
	if srv.TokensIssued() != 2 || srv.Rejected() != 1 {
		t.Errorf("tokens %d, rejections %d; want 2 and 1", srv.TokensIssued(), srv.Rejected())
	}
	// The new token is used from then on.
	if _, err := b.Status(ctx(t), h); err != nil || srv.TokensIssued() != 2 || srv.Rejected() != 1 {
		t.Errorf("second status: %v; tokens %d rejections %d", err, srv.TokensIssued(), srv.Rejected())
	}
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := tapistest.New(t, &tapistest.Config{TokenTTL: 20 * time.Minute, Now: clock})
	cfg := config(srv, nil)
	cfg.Now = clock
	b, _ := open(t, cfg)
	h, err := b.Submit(ctx(t), backends.Task{ID: "p", Agent: tapistest.AgentWait, DatasetID: "ds"})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(10 * time.Minute) // 10 min left: still more than RefreshBefore (5 min)
	mu.Unlock()
	b.Status(ctx(t), h)
	if srv.TokensIssued() != 1 {
		t.Errorf("minted %d tokens with 10 minutes left, want 1", srv.TokensIssued())
	}
	mu.Lock()
	now = now.Add(6 * time.Minute) // 4 min left
	mu.Unlock()
	if _, err := b.Status(ctx(t), h); err != nil {
		t.Fatal(err)
	}
	if srv.TokensIssued() != 2 || srv.Rejected() != 0 {
		t.Errorf("tokens %d, rejections %d; want the token replaced before it expired (2, 0)", srv.TokensIssued(), srv.Rejected())
	}
}

func TestCredentialsNeverLeak(t *testing.T) {
	srv := tapistest.New(t, nil)
	logs := &syncBuffer{}
	cfg := config(srv, logs)
	good := cfg.Password
	cfg.Password = "wrong-" + good
	b, d := open(t, cfg)
	perr := d.Ping(ctx(t))
	if !errors.Is(perr, backends.ErrUnauthorized) || !strings.Contains(perr.Error(), "check Username and the password") {
		t.Fatalf("ping with a bad password = %v, want ErrUnauthorized saying what to check", perr)
	}
	_, serr := b.Submit(ctx(t), backends.Task{ID: "x", Agent: "steps", DatasetID: "ds"})

	// A fixed token that expired: ErrUnauthorized saying what to do.
	tok := srv.IssueToken(time.Hour)
	cfg2 := config(srv, logs)
	cfg2.Password, cfg2.Token = "", tok
	b2, _ := open(t, cfg2)
	h, err := b2.Submit(ctx(t), backends.Task{ID: "y", Agent: tapistest.AgentWait, DatasetID: "ds"})
	if err != nil {
		t.Fatal(err)
	}
	srv.ExpireTokens()
	_, terr := b2.Status(ctx(t), h)
	if !errors.Is(terr, backends.ErrUnauthorized) || !strings.Contains(terr.Error(), "mint a new one") || !strings.Contains(terr.Error(), "TAPIS_SECURITY_JWT_EXPIRED") {
		t.Errorf("status with an expired fixed token = %v", terr)
	}
	if serr == nil {
		t.Fatal("submit with a bad password succeeded")
	}
	for _, s := range []string{perr.Error(), serr.Error(), terr.Error(), logs.String(), fmt.Sprintf("%v %+v", *cfg, *cfg2)} {
		for _, secret := range []string{good, cfg.Password, tok} {
			if strings.Contains(s, secret) {
				t.Errorf("secret %q leaked into %q", secret[:4]+"…", s)
			}
		}
	}
	var lb bytes.Buffer
	slog.New(slog.NewJSONHandler(&lb, nil)).Info("config", "tapis", *cfg2)
	if strings.Contains(lb.String(), tok) || !strings.Contains(lb.String(), `"token_set":true`) {
		t.Errorf("LogValue = %s", lb.String())
	}
}

func TestRecoverAfterRestart(t *testing.T) {
	srv := tapistest.New(t, nil)
	b, _ := open(t, config(srv, nil))
	h, err := b.Submit(ctx(t), backends.Task{ID: "rr", Agent: tapistest.AgentWait, DatasetID: "ds", GPUs: 3})
	if err != nil {
		t.Fatal(err)
	}
	for range 8 {
		b.Status(ctx(t), h)
	}
	stored, _ := json.Marshal(h)
	b.Close()
	// A new process: a fresh driver recovers the job from the stored handle.
	b2, _ := open(t, config(srv, nil))
	var h2 backends.Handle
	json.Unmarshal(stored, &h2)
	st, err := b2.Recover(ctx(t), h2)
	if err != nil || st.State != backends.TaskRunning {
		t.Fatalf("Recover = %+v, %v", st, err)
	}
	c, err := b2.Capacity(ctx(t))
	if err != nil || c.Running != 1 || c.FreeGPUs != 1 {
		t.Errorf("capacity after recover %+v, %v; want 1 running and 3 of 4 GPUs used", c, err)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		cfg  tapis.Config
		want string
	}{
		{tapis.Config{}, "URL and Tenant"},
		{tapis.Config{URL: "ftp://x", Token: "t", AppID: "a", AppVersion: "1"}, `field URL is "ftp://x"`},
		{tapis.Config{URL: "https://u:pw@tacc.tapis.io", Token: "t", AppID: "a", AppVersion: "1"}, "must not carry credentials"},
		{tapis.Config{Tenant: "TACC!", Token: "t", AppID: "a", AppVersion: "1"}, `field Tenant is "TACC!"`},
		{tapis.Config{Tenant: "tacc", AppID: "a", AppVersion: "1"}, "no credentials"},
		{tapis.Config{Tenant: "tacc", Password: "pw", AppID: "a", AppVersion: "1"}, "Username is empty"},
		{tapis.Config{Tenant: "tacc", Token: "t"}, "AppID"},
		{tapis.Config{Tenant: "tacc", Token: "t", AppID: "a", AppVersion: "1", GPUArg: "--gpus"}, "GPUArg"},
		{tapis.Config{Tenant: "tacc", Token: "t", AppID: "a", AppVersion: "1", Env: map[string]string{"_tapisJobUUID": "x"}}, "_tapis"},
	}
	for _, c := range cases {
		_, err := tapis.New(&c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%v) = %v, want an error containing %q", c.cfg, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("error %q shows the password", err)
		}
	}
	d, err := tapis.New(&tapis.Config{Tenant: "tacc", Token: "t", AppID: "a", AppVersion: "1"})
	if err != nil || d.Config().URL != "https://tacc.tapis.io" {
		t.Errorf("tenant URL: %v %v", d.Config().URL, err)
	}
}

// While the job runs, progress comes from the runner's progress file
// (read with allowIfRunning), scaled into 10–90 %, and never goes down.
func TestRunnerProgress(t *testing.T) {
	srv := tapistest.New(t, nil)
	b, _ := open(t, config(srv, nil))
	h, err := b.Submit(ctx(t), backends.Task{ID: "prog", Agent: tapistest.AgentWait, DatasetID: "ds"})
	if err != nil {
		t.Fatal(err)
	}
	var running []float64
	for range 14 {
		st, err := b.Status(ctx(t), h)
		if err != nil {
			t.Fatal(err)
		}
		if st.State == backends.TaskRunning {
			running = append(running, st.Progress)
		}
	}
	// The emulated runner reports 20, 40, 60, 80, 90, 90 ... percent from
	// the second read it runs.
	// The first running read finds no progress file yet: 10 %.
	want := []float64{10, 26, 42, 58, 74, 82, 82, 82, 82}
	if fmt.Sprint(running) != fmt.Sprint(want) {
		t.Errorf("running progress %v, want %v", running, want)
	}
	var allow int
	for _, r := range srv.Requests() {
		if strings.HasSuffix(r.Path, "/horizons.progress.json") && r.Query.Get("allowIfRunning") == "true" {
			allow++
		}
	}
	if allow != len(running) {
		t.Errorf("%d progress reads with allowIfRunning for %d running polls", allow, len(running))
	}
}

func TestCapacityCache(t *testing.T) {
	srv := tapistest.New(t, nil)
	b, _ := open(t, config(srv, nil))
	lists := func() int { return srv.Count(http.MethodGet, "/v3/jobs/list") }
	c1, err := b.Capacity(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	n := lists()
	if c2, _ := b.Capacity(ctx(t)); c2 != c1 || lists() != n {
		t.Errorf("second Capacity listed again (%d lists) or changed %+v -> %+v", lists()-n, c1, c2)
	}
	h, err := b.Submit(ctx(t), backends.Task{ID: "cc", Agent: tapistest.AgentWait, DatasetID: "ds", GPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := b.Capacity(ctx(t)); c.Pending != 1 {
		t.Errorf("capacity after a submit %+v, want the new job pending", c)
	}
	for range 8 {
		b.Status(ctx(t), h)
	}
	if c, _ := b.Capacity(ctx(t)); c.Running != 1 || c.FreeGPUs != 2 {
		t.Errorf("capacity once running %+v, want 1 running and 2 of 4 GPUs free", c)
	}
}

// A redirect to another host is not followed: it would carry the token.
func TestNoCrossHostRedirect(t *testing.T) {
	var leaked atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Tapis-Token") != "" {
			leaked.Store(true)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer other.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	d, err := tapis.New(&tapis.Config{URL: redirector.URL, Token: "secret-token-value", AppID: "a", AppVersion: "1", RetryMax: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.Ping(ctx(t))
	if err == nil || !strings.Contains(err.Error(), "refusing the redirect") || strings.Contains(err.Error(), "secret-token-value") {
		t.Errorf("ping through a cross-host redirect = %v", err)
	}
	if leaked.Load() {
		t.Error("the token reached the other host")
	}
}

// A finished job without its result file completes with what Tapis knows
// and says so; a transient failure to read the result is an error and is
// not remembered.
func TestResultFileMissingOrUnreadable(t *testing.T) {
	srv := tapistest.New(t, nil)
	b, _ := open(t, config(srv, nil))
	finish := func(id string) backends.Handle {
		h, err := b.Submit(ctx(t), backends.Task{ID: id, Agent: "steps", DatasetID: "ds"})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.SetStatus(h.ExternalID, "FINISHED", "NORMAL_COMPLETION"); err != nil {
			t.Fatal(err)
		}
		return h
	}
	h := finish("missing")
	st, err := b.Status(ctx(t), h)
	if err != nil || st.State != backends.TaskCompleted || !strings.Contains(st.Message, "without the result file horizons.result.json") || !strings.Contains(string(st.Result), h.ExternalID) {
		t.Errorf("finished without a result: %+v, %v", st, err)
	}
	h2 := finish("flaky")
	srv.SetOutput(h2.ExternalID, "horizons.result.json", []byte(`{"summary":"late"}`))
	srv.FailNextMatching(http.MethodGet, "/v3/jobs/"+h2.ExternalID+"/output/download/", 10, http.StatusInternalServerError)
	if _, err := b.Status(ctx(t), h2); !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("status while the result cannot be read = %v, want ErrUnavailable", err)
	}
	srv.FailNext(0, 0)
	if st, err := b.Status(ctx(t), h2); err != nil || string(st.Result) != `{"summary":"late"}` || st.Message != "" {
		t.Errorf("status once readable: %+v, %v", st, err)
	}
}
