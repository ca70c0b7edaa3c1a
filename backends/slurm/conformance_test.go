package slurm_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/backendtest"
	"github.com/cosmic-horizons/horizons/backends/slurm"
)

// cluster is a stateful stand-in for slurmrestd v0.0.38 whose job records
// are the recorded 22.05 record with the live fields replaced. Each GET of
// a job moves it one step: PENDING, RUNNING, then by agent: "steps"
// COMPLETED (writing the runner's result file), "fails" FAILED with exit
// 3 (wait status 768), "waits" stays RUNNING until DELETE (CANCELLED, 15).
type cluster struct {
	t       *testing.T
	workDir string
	mu      sync.Mutex
	next    int64
	jobs    map[string]*simJob
}

type simJob struct {
	id          int64
	name, agent string
	state       string
	exit        int
	start, end  int64
}

func (c *cluster) record(j *simJob) map[string]any {
	var doc map[string]any
	json.Unmarshal(fixture(c.t, "v0038-resp-job4.json"), &doc)
	rec := doc["jobs"].([]any)[0].(map[string]any)
	rec["job_id"], rec["name"], rec["job_state"], rec["exit_code"] = j.id, j.name, j.state, j.exit
	rec["start_time"], rec["end_time"] = j.start, j.end
	rec["state_reason"] = "None"
	if j.state == "PENDING" {
		rec["state_reason"] = "Resources"
	}
	if j.state == "FAILED" {
		rec["state_reason"] = "NonZeroExitCode"
	}
	return rec
}

func (c *cluster) reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	switch b := v.(type) {
	case []byte:
		w.Write(b)
	default:
		json.NewEncoder(w).Encode(v)
	}
}

func (c *cluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-SLURM-USER-NAME") != user || r.Header.Get("X-SLURM-USER-TOKEN") != token {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/slurm/v0.0.38/")
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now().Unix()
	switch {
	case r.Method == http.MethodPost && p == "job/submit":
		var body struct {
			Script string `json:"script"`
			Job    struct {
				Name        string            `json:"name"`
				Environment map[string]string `json:"environment"`
			} `json:"job"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Job.Environment) == 0 {
			c.reply(w, http.StatusBadRequest, fixture(c.t, "v0038-err-env-missing.json"))
			return
		}
		var task backends.Task
		if err := json.Unmarshal([]byte(body.Job.Environment["HORIZONS_TASK"]), &task); err != nil {
			c.t.Errorf("HORIZONS_TASK does not decode: %v", err)
		}
		c.next++
		j := &simJob{id: c.next, name: body.Job.Name, agent: task.Agent, state: "PENDING"}
		c.jobs[strconv.FormatInt(j.id, 10)] = j
		var doc map[string]any
		json.Unmarshal(fixture(c.t, "v0038-resp-submit.json"), &doc)
		doc["job_id"] = j.id
		c.reply(w, http.StatusOK, doc)
	case r.Method == http.MethodGet && p == "jobs":
		var recs []any
		for _, j := range c.jobs {
			recs = append(recs, c.record(j))
		}
		c.reply(w, http.StatusOK, map[string]any{"meta": map[string]any{}, "errors": []any{}, "jobs": recs})
	case strings.HasPrefix(p, "job/"):
		j, ok := c.jobs[strings.TrimPrefix(p, "job/")]
		if !ok {
			c.reply(w, http.StatusInternalServerError, fixture(c.t, "v0038-err-job-not-found.json"))
			return
		}
		switch r.Method {
		case http.MethodGet:
			switch {
			case j.state == "PENDING":
				j.state, j.start = "RUNNING", now
			case j.state == "RUNNING" && j.agent == "steps":
				j.state, j.end = "COMPLETED", now
				res := fmt.Sprintf(`{"summary":"ran %s","metrics":{"job":%d}}`, j.name, j.id)
				if err := os.WriteFile(filepath.Join(c.workDir, fmt.Sprintf("horizons-%d.result.json", j.id)), []byte(res), 0o644); err != nil {
					c.t.Error(err)
				}
			case j.state == "RUNNING" && j.agent == "fails":
				j.state, j.exit, j.end = "FAILED", 768, now
			}
			c.reply(w, http.StatusOK, map[string]any{"meta": map[string]any{}, "errors": []any{}, "jobs": []any{c.record(j)}})
		case http.MethodDelete:
			if j.state == "PENDING" || j.state == "RUNNING" {
				j.state, j.exit, j.end = "CANCELLED", 15, now
			}
			c.reply(w, http.StatusOK, fixture(c.t, "v0038-resp-cancel.json"))
		}
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, backendtest.Harness{
		New: func(t *testing.T) backendtest.Instance {
			c := &cluster{t: t, workDir: t.TempDir(), next: 99, jobs: map[string]*simJob{}}
			srv := httptest.NewServer(c)
			t.Cleanup(srv.Close)
			b, err := slurm.Open(&slurm.Config{URL: srv.URL, UserName: user, Token: token, WorkDir: c.workDir,
				MaxGPUs: 4, MaxWallTime: 24 * time.Hour, Agents: []string{"steps", "fails", "waits"}},
				&backends.Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			return backendtest.Instance{Backend: b}
		},
		Complete: func(id string) backends.Task { return backends.Task{ID: id, Agent: "steps", DatasetID: "ds"} },
		Fail:     func(id string) backends.Task { return backends.Task{ID: id, Agent: "fails", DatasetID: "ds"} },
		Long:     func(id string) backends.Task { return backends.Task{ID: id, Agent: "waits", DatasetID: "ds", GPUs: 1} },
		Poll:     time.Millisecond,
	})
}
