package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/orchestrator"
)

func (ts *testServer) getRun(tok, id string) runJSON {
	ts.t.Helper()
	r := ts.do("GET", "/api/v1/workflow-runs/"+id, tok, nil, nil)
	if r.status != http.StatusOK {
		ts.t.Fatalf("get run %s: %d %s", id, r.status, r.body)
	}
	var run runJSON
	r.decode(ts.t, &run)
	return run
}

func (ts *testServer) waitRun(tok, id string, cond func(runJSON) bool) runJSON {
	ts.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		run := ts.getRun(tok, id)
		if cond(run) {
			return run
		}
		if time.Now().After(deadline) {
			ts.t.Fatalf("run %s never reached the expected condition; last %+v", id, run)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var wfMetricRe = regexp.MustCompile(`(?m)^horizons_workflow_events_total\{type="([^"]+)"\} (\d+)$`)

// workflowEventCounts reads horizons_workflow_events_total from /metrics.
func (ts *testServer) workflowEventCounts() map[string]int {
	ts.t.Helper()
	r := ts.do("GET", "/metrics", "", nil, nil)
	out := map[string]int{}
	for _, m := range wfMetricRe.FindAllStringSubmatch(string(r.body), -1) {
		n, _ := strconv.Atoi(m[2])
		out[m[1]] = n
	}
	return out
}

func stepOf(t *testing.T, run runJSON, name string) stepJSON {
	t.Helper()
	for _, s := range run.Steps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("run %s has no step %s", run.ID, name)
	return stepJSON{}
}

// TestWorkflowVLASSPipelineEndToEnd runs the built-in vlass-pipeline on
// the production wiring (SQLite, membus, simgpu): step order, outputs
// passed on, workflow events (history and bus), owner scoping, cancel.
func TestWorkflowVLASSPipelineEndToEnd(t *testing.T) {
	env := map[string]string{envAdminToken: testAdminToken, envSimSpeedUp: "2000"}
	ts := startServer(t, t.TempDir(), env, testOptions(-1))
	alice := ts.createUser(testAdminToken, "alice", "user")
	bob := ts.createUser(testAdminToken, "bob", "user")

	// The built-in is published at start-up.
	r := ts.do("GET", "/api/v1/workflows", alice.Token, nil, nil)
	var list workflowList
	r.decode(t, &list)
	if r.status != http.StatusOK || len(list.Workflows) != 1 || list.Workflows[0].Name != "vlass-pipeline" || list.Workflows[0].Owner != "system" || len(list.Workflows[0].Definition.Steps) != 3 {
		t.Fatalf("GET /api/v1/workflows: %d %s", r.status, r.body)
	}

	const corr = "wf-e2e-corr"
	r = ts.do("POST", "/api/v1/workflow-runs", alice.Token, map[string]any{"workflow": "vlass-pipeline", "inputs": map[string]string{"dataset_id": "VLASS2.2.T10t01"}}, map[string]string{"X-Correlation-ID": corr})
	if r.status != http.StatusCreated {
		t.Fatalf("start run: %d %s", r.status, r.body)
	}
	var run runJSON
	r.decode(t, &run)
	if run.State != "RUNNING" || run.Version != 1 || run.CorrelationID != corr || r.header.Get("Location") != "/api/v1/workflow-runs/"+run.ID {
		t.Fatalf("started run %+v (Location %q)", run, r.header.Get("Location"))
	}
	final := ts.waitRun(alice.Token, run.ID, func(x runJSON) bool { return x.State != "RUNNING" })
	if final.State != "COMPLETED" {
		t.Fatalf("run ended %s: %s %+v", final.State, final.Error, final.Steps)
	}
	// Step order and output passing, checked on the jobs themselves.
	var prev jobJSON
	wantAgents := []string{"alphacal", "image-reconstruction", "anomaly-detection"}
	for i, name := range []string{"calibrate", "image", "detect"} {
		st := stepOf(t, final, name)
		j := ts.getJob(alice.Token, st.JobID)
		if j.Agent != wantAgents[i] || j.State != string(orchestrator.StateCompleted) || j.Owner != alice.ID || j.CorrelationID != corr {
			t.Errorf("step %s job %+v", name, j)
		}
		if i > 0 {
			if j.CreatedAt.Before(*prev.FinishedAt) {
				t.Errorf("step %s's job was created %v, before the previous step finished %v", name, j.CreatedAt, prev.FinishedAt)
			}
			var prevOut map[string]string
			_ = json.Unmarshal(stepOf(t, final, []string{"calibrate", "image"}[i-1]).Outputs, &prevOut)
			if len(prevOut) != 1 {
				t.Errorf("step before %s declared outputs %v", name, prevOut)
			}
			for _, v := range prevOut {
				if j.DatasetID != v || v != "VLASS2.2.T10t01" {
					t.Errorf("step %s ran on %q, want the previous output %q", name, j.DatasetID, v)
				}
			}
		}
		prev = j
	}
	// Events: history over REST, and the same on the bus.
	r = ts.do("GET", "/api/v1/workflow-runs/"+run.ID+"/events", alice.Token, nil, nil)
	var hist eventList
	r.decode(t, &hist)
	want := []string{"workflow.submitted", "workflow.step_started", "workflow.step_completed", "workflow.step_started", "workflow.step_completed", "workflow.step_started", "workflow.step_completed", "workflow.completed"}
	if got := types(hist.Events); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("run events %v, want %v", got, want)
	}
	for i, e := range hist.Events {
		if e.Subject != run.ID || e.CorrelationID != corr || e.Sequence != int64(i+1) {
			t.Errorf("event %d: subject %s correlation %s sequence %d", i, e.Subject, e.CorrelationID, e.Sequence)
		}
	}
	// The bus delivered them to the workflow metrics consumer.
	wantCount := map[string]int{}
	for _, ty := range want {
		wantCount[ty]++
	}
	deadline := time.Now().Add(waitLimit)
	for {
		got := ts.workflowEventCounts()
		same := len(got) == len(wantCount)
		for ty, n := range wantCount {
			same = same && got[ty] == n
		}
		if same {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("horizons_workflow_events_total %v, want %v", got, wantCount)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Owner scoping: bob cannot see alice's run; the admin can.
	if r := ts.do("GET", "/api/v1/workflow-runs/"+run.ID, bob.Token, nil, nil); r.status != http.StatusNotFound {
		t.Errorf("bob GET alice's run: %d", r.status)
	}
	if r := ts.do("POST", "/api/v1/workflow-runs/"+run.ID+"/cancel", bob.Token, nil, nil); r.status != http.StatusNotFound {
		t.Errorf("bob cancels alice's run: %d", r.status)
	}
	if r := ts.do("GET", "/api/v1/workflow-runs/"+run.ID, testAdminToken, nil, nil); r.status != http.StatusOK {
		t.Errorf("admin GET alice's run: %d", r.status)
	}
	var bobs runList
	ts.do("GET", "/api/v1/workflow-runs", bob.Token, nil, nil).decode(t, &bobs)
	if len(bobs.Runs) != 0 {
		t.Errorf("bob lists %d runs", len(bobs.Runs))
	}
	// Cancelling a completed run is a conflict.
	if r := ts.do("POST", "/api/v1/workflow-runs/"+run.ID+"/cancel", alice.Token, nil, nil); r.status != http.StatusConflict || r.apiErr(t).Code != "conflict" {
		t.Errorf("cancel completed run: %d %s", r.status, r.body)
	}

	// Cancel: a CPU-only imaging step on a large dataset runs for seconds.
	slow := map[string]any{
		"name": "slow-pipeline", "failure_policy": "fail_fast",
		"steps": []map[string]any{
			{"name": "long", "agent": "image-reconstruction", "dataset_id": "d1", "gpus": 0},
			{"name": "after", "agent": "anomaly-detection", "dataset_id": "d1", "gpus": 1, "depends_on": []string{"long"}},
		},
	}
	if r := ts.do("POST", "/api/v1/workflows", bob.Token, slow, nil); r.status != http.StatusCreated {
		t.Fatalf("create slow-pipeline: %d %s", r.status, r.body)
	}
	r = ts.do("POST", "/api/v1/workflow-runs", bob.Token, map[string]any{"workflow": "slow-pipeline"}, nil)
	var srun runJSON
	r.decode(t, &srun)
	running := ts.waitRun(bob.Token, srun.ID, func(x runJSON) bool { return stepOf(t, x, "long").JobID != "" })
	jobID := stepOf(t, running, "long").JobID
	ts.waitJob(bob.Token, jobID, func(j jobJSON) bool { return j.State == string(orchestrator.StateRunning) })
	r = ts.do("POST", "/api/v1/workflow-runs/"+srun.ID+"/cancel", bob.Token, map[string]string{"reason": "wrong field"}, nil)
	var cancelled runJSON
	r.decode(t, &cancelled)
	if r.status != http.StatusOK || cancelled.State != "CANCELLED" || stepOf(t, cancelled, "long").State != "CANCELLED" || stepOf(t, cancelled, "after").State != "SKIPPED" {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if j := ts.getJob(bob.Token, jobID); j.State != string(orchestrator.StateCancelled) {
		t.Errorf("cancelled run's running job is %s", j.State)
	}
	var sh eventList
	ts.do("GET", "/api/v1/workflow-runs/"+srun.ID+"/events", bob.Token, nil, nil).decode(t, &sh)
	if ty := types(sh.Events); ty[len(ty)-1] != string(events.WorkflowCancelled) {
		t.Errorf("cancelled run's events %v", ty)
	}
}

// TestWorkflowAPIErrors: bad input gets 400 naming the step and field, and
// nothing is created; unknown names 404; taken names 409; changing another
// user's workflow 403.
func TestWorkflowAPIErrors(t *testing.T) {
	env := map[string]string{envAdminToken: testAdminToken, envSimSpeedUp: "2000"}
	ts := startServer(t, t.TempDir(), env, testOptions(-1))
	alice := ts.createUser(testAdminToken, "alice", "user")
	bob := ts.createUser(testAdminToken, "bob", "user")
	step := func(name, agent string, deps ...string) map[string]any {
		return map[string]any{"name": name, "agent": agent, "dataset_id": "vlass-x", "gpus": 1, "depends_on": deps}
	}
	cases := []struct {
		name  string
		body  any
		field string
		msg   string
	}{
		{"cycle", map[string]any{"name": "cyc", "steps": []any{step("a", "alphacal", "b"), step("b", "imaging", "a")}}, "steps[a].depends_on", "a -> b -> a"},
		{"unknown agent", map[string]any{"name": "ua", "steps": []any{step("a", "teleport")}}, "steps[a].agent", "teleport"},
		{"unknown dependency", map[string]any{"name": "ud", "steps": []any{step("a", "alphacal", "ghost")}}, "steps[a].depends_on", "ghost"},
		{"duplicate step", map[string]any{"name": "dup", "steps": []any{step("a", "alphacal"), step("a", "imaging")}}, "steps[a].name", "duplicate"},
		{"bad param", map[string]any{"name": "bp", "steps": []any{map[string]any{"name": "a", "agent": "imaging", "dataset_id": "x", "params": map[string]any{"image_size": 100}}}}, "steps[a].params.image_size", "100"},
		{"malformed", `{"name": "m", "steps": [`, "", "JSON"},
		{"unknown field", map[string]any{"name": "uf", "stepz": []any{}}, "stepz", "unknown field"},
	}
	for _, c := range cases {
		r := ts.do("POST", "/api/v1/workflows", alice.Token, c.body, nil)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
			continue
		}
		e := r.apiErr(t)
		if e.Field != c.field || !strings.Contains(e.Message, c.msg) {
			t.Errorf("%s: field %q message %q, want field %q and %q", c.name, e.Field, e.Message, c.field, c.msg)
		}
	}
	var list workflowList
	ts.do("GET", "/api/v1/workflows", alice.Token, nil, nil).decode(t, &list)
	if len(list.Workflows) != 1 {
		t.Errorf("rejected definitions were stored: %d workflows", len(list.Workflows))
	}
	good := map[string]any{"name": "mine", "steps": []any{step("a", "alphacal")}}
	if r := ts.do("POST", "/api/v1/workflows", alice.Token, good, nil); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if r := ts.do("POST", "/api/v1/workflows", bob.Token, good, nil); r.status != http.StatusConflict {
		t.Errorf("create taken name: %d %s", r.status, r.body)
	}
	v2 := map[string]any{"steps": []any{step("a", "alphacal"), step("b", "imaging", "a")}}
	if r := ts.do("POST", "/api/v1/workflows/mine/versions", bob.Token, v2, nil); r.status != http.StatusForbidden {
		t.Errorf("bob publishes alice's workflow: %d %s", r.status, r.body)
	}
	if r := ts.do("POST", "/api/v1/workflows/vlass-pipeline/rollback", alice.Token, map[string]int{"version": 1}, nil); r.status != http.StatusForbidden {
		t.Errorf("a user rolls back the built-in: %d %s", r.status, r.body)
	}
	r := ts.do("POST", "/api/v1/workflows/mine/versions", alice.Token, v2, nil)
	var pub workflowJSON
	r.decode(t, &pub)
	if r.status != http.StatusCreated || pub.CurrentVersion != 2 || pub.Definition.Version != 2 {
		t.Fatalf("publish: %d %s", r.status, r.body)
	}
	if r := ts.do("POST", "/api/v1/workflows/nope/versions", alice.Token, v2, nil); r.status != http.StatusNotFound {
		t.Errorf("publish to unknown workflow: %d", r.status)
	}
	if r := ts.do("POST", "/api/v1/workflows/mine/rollback", alice.Token, map[string]int{"version": 7}, nil); r.status != http.StatusBadRequest || r.apiErr(t).Field != "version" {
		t.Errorf("rollback to version 7: %d %s", r.status, r.body)
	}
	r = ts.do("POST", "/api/v1/workflows/mine/rollback", alice.Token, map[string]int{"version": 1}, nil)
	var rb workflowJSON
	r.decode(t, &rb)
	if r.status != http.StatusOK || rb.CurrentVersion != 1 || rb.LatestVersion != 2 || len(rb.Definition.Steps) != 1 {
		t.Errorf("rollback: %d %s", r.status, r.body)
	}
	// Run requests.
	for _, c := range []struct {
		body  map[string]any
		code  int
		field string
	}{
		{map[string]any{"workflow": "nope"}, http.StatusBadRequest, "workflow"},
		{map[string]any{"workflow": "vlass-pipeline"}, http.StatusBadRequest, "inputs.dataset_id"},
		{map[string]any{"workflow": "vlass-pipeline", "inputs": map[string]string{"dataset_id": "bad id!"}}, http.StatusBadRequest, "inputs.dataset_id"},
		{map[string]any{"workflow": "vlass-pipeline", "inputs": map[string]string{"dataset_id": "ok", "extra": "1"}}, http.StatusBadRequest, "inputs.extra"},
		{map[string]any{"workflow": "mine", "version": 3}, http.StatusBadRequest, "version"},
	} {
		r := ts.do("POST", "/api/v1/workflow-runs", alice.Token, c.body, nil)
		if r.status != c.code || r.apiErr(t).Field != c.field {
			t.Errorf("run %v: %d %s, want %d naming %s", c.body, r.status, r.body, c.code, c.field)
		}
	}
	var runs runList
	ts.do("GET", "/api/v1/workflow-runs", testAdminToken, nil, nil).decode(t, &runs)
	if len(runs.Runs) != 0 {
		t.Errorf("rejected run requests stored %d runs", len(runs.Runs))
	}
	if r := ts.do("GET", "/api/v1/workflow-runs/nope", alice.Token, nil, nil); r.status != http.StatusNotFound {
		t.Errorf("unknown run: %d", r.status)
	}
	if r := ts.do("GET", "/api/v1/workflows", "", nil, nil); r.status != http.StatusUnauthorized {
		t.Errorf("no token: %d", r.status)
	}
}

// TestWorkflowResumesAfterRestart stops the server while a run's step is
// RUNNING and starts a new one on the same data directory: the run is
// resumed from the stored state (the simulated cluster lost the task, so
// the orchestrator retries the step's job) and completes, with no step
// submitted twice.
func TestWorkflowResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	// alphacal on VLASS2.2 is modelled at 45 s: 1.5 s here, long enough to
	// stop the server while it runs.
	env := map[string]string{envAdminToken: testAdminToken, envSimSpeedUp: "30"}
	ts := startServer(t, dir, env, testOptions(-1))
	def := map[string]any{
		"name": "restartable",
		"steps": []map[string]any{
			{"name": "first", "agent": "alphacal", "dataset_id": "VLASS2.2", "gpus": 1, "outputs": map[string]string{"ds": "dataset_id"}},
			{"name": "second", "agent": "anomaly-detection", "dataset_id": "${steps.first.outputs.ds}", "gpus": 1, "depends_on": []string{"first"}},
		},
	}
	if r := ts.do("POST", "/api/v1/workflows", testAdminToken, def, nil); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r := ts.do("POST", "/api/v1/workflow-runs", testAdminToken, map[string]any{"workflow": "restartable"}, nil)
	var run runJSON
	r.decode(t, &run)
	running := ts.waitRun(testAdminToken, run.ID, func(x runJSON) bool { return stepOf(t, x, "first").JobID != "" })
	firstJob := stepOf(t, running, "first").JobID
	ts.waitJob(testAdminToken, firstJob, func(j jobJSON) bool { return j.State == string(orchestrator.StateRunning) })
	ts.stop()

	ts2 := startServer(t, dir, env, testOptions(-1))
	final := ts2.waitRun(testAdminToken, run.ID, func(x runJSON) bool { return x.State != "RUNNING" })
	if final.State != "COMPLETED" || stepOf(t, final, "first").JobID != firstJob {
		t.Fatalf("after restart: %s %q, first step job %s (was %s)", final.State, final.Error, stepOf(t, final, "first").JobID, firstJob)
	}
	j := ts2.getJob(testAdminToken, firstJob)
	if j.Attempts < 2 {
		t.Errorf("the lost task was not retried: attempts %d", j.Attempts)
	}
	second := ts2.getJob(testAdminToken, stepOf(t, final, "second").JobID)
	if second.DatasetID != "VLASS2.2" {
		t.Errorf("second step ran on %q", second.DatasetID)
	}
	var hist eventList
	ts2.do("GET", "/api/v1/workflow-runs/"+run.ID+"/events", testAdminToken, nil, nil).decode(t, &hist)
	starts := 0
	for _, e := range hist.Events {
		if e.Type == events.WorkflowStepStarted {
			starts++
		}
	}
	if starts != 2 || hist.Events[len(hist.Events)-1].Type != events.WorkflowCompleted {
		t.Errorf("events after restart %v", types(hist.Events))
	}
}

// workflowOpenAPICalls drives every workflow operation of /openapi.json
// for TestOpenAPI (the clock backend runs the jobs).
func workflowOpenAPICalls(t *testing.T, c *apiChecker, alice userResponse, admin string) {
	c.call("GET", "/api/v1/workflows", alice.Token, nil, nil, 200)
	c.call("GET", "/api/v1/workflows", "", nil, nil, 401)
	def := map[string]any{"name": "oa-flow", "description": "two steps", "failure_policy": "continue", "inputs": map[string]string{"ds": "VLASS2.1"},
		"steps": []map[string]any{
			{"name": "a", "agent": "alphacal", "dataset_id": "${inputs.ds}", "gpus": 1, "params": map[string]any{"iterations": 2}, "outputs": map[string]string{"summary": "summary"}},
			{"name": "b", "agent": "imaging", "dataset_id": "${inputs.ds}", "depends_on": []string{"a"}, "priority": 3},
		}}
	c.call("POST", "/api/v1/workflows", alice.Token, def, nil, 201)
	c.call("POST", "/api/v1/workflows", alice.Token, def, nil, 409)
	c.call("POST", "/api/v1/workflows", alice.Token, map[string]any{"name": "oa-bad", "steps": []map[string]any{{"name": "a", "agent": "alphacal", "dataset_id": "x", "depends_on": []string{"a"}}}}, nil, 400)
	c.call("POST", "/api/v1/workflows", alice.Token, strings.Repeat(" ", maxBodyBytes+1), nil, 413)
	c.call("POST", "/api/v1/workflows/oa-flow/versions", alice.Token, map[string]any{"steps": []map[string]any{{"name": "only", "agent": "alphacal", "dataset_id": "x"}}}, nil, 201)
	c.call("POST", "/api/v1/workflows/oa-flow/versions", alice.Token, map[string]any{"steps": []map[string]any{}}, nil, 400)
	c.call("POST", "/api/v1/workflows/nope/versions", alice.Token, map[string]any{"steps": []map[string]any{{"name": "only", "agent": "alphacal", "dataset_id": "x"}}}, nil, 404)
	c.call("POST", "/api/v1/workflows/vlass-pipeline/versions", alice.Token, map[string]any{"steps": []map[string]any{{"name": "only", "agent": "alphacal", "dataset_id": "x"}}}, nil, 403)
	c.call("POST", "/api/v1/workflows/oa-flow/rollback", alice.Token, map[string]any{"version": 1}, nil, 200)
	c.call("POST", "/api/v1/workflows/oa-flow/rollback", alice.Token, map[string]any{"version": 9}, nil, 400)
	c.call("POST", "/api/v1/workflows/nope/rollback", alice.Token, map[string]any{"version": 1}, nil, 404)
	c.call("POST", "/api/v1/workflows/vlass-pipeline/rollback", alice.Token, map[string]any{"version": 1}, nil, 403)

	var run runJSON
	json.Unmarshal(c.call("POST", "/api/v1/workflow-runs", alice.Token, map[string]any{"workflow": "oa-flow", "version": 1}, map[string]string{"X-Correlation-ID": "oa-wf"}, 201).body, &run)
	c.call("POST", "/api/v1/workflow-runs", alice.Token, map[string]any{"workflow": "oa-flow", "inputs": map[string]string{"nope": "1"}}, nil, 400)
	c.call("POST", "/api/v1/workflow-runs", "", map[string]any{"workflow": "oa-flow"}, nil, 401)
	c.call("POST", "/api/v1/workflow-runs", alice.Token, strings.Repeat(" ", maxBodyBytes+1), nil, 413)
	c.call("GET", "/api/v1/workflow-runs/"+run.ID, alice.Token, nil, nil, 200)
	c.call("GET", "/api/v1/workflow-runs/no-such-run", alice.Token, nil, nil, 404)
	c.call("GET", "/api/v1/workflow-runs/"+run.ID, "", nil, nil, 401)
	final := c.ts.waitRun(alice.Token, run.ID, func(x runJSON) bool { return x.State != "RUNNING" })
	c.call("GET", "/api/v1/workflow-runs/"+run.ID, alice.Token, nil, nil, 200) // all times set
	if final.State != "COMPLETED" {
		t.Errorf("oa-flow run ended %s: %s", final.State, final.Error)
	}
	c.call("GET", "/api/v1/workflow-runs/"+run.ID+"/events", alice.Token, nil, nil, 200)
	c.call("GET", "/api/v1/workflow-runs/no-such-run/events", alice.Token, nil, nil, 404)
	c.call("GET", "/api/v1/workflow-runs/"+run.ID+"/events", "", nil, nil, 401)
	c.call("GET", "/api/v1/workflow-runs?limit=5", alice.Token, nil, nil, 200)
	c.call("GET", "/api/v1/workflow-runs?limit=0", alice.Token, nil, nil, 400)
	c.call("GET", "/api/v1/workflow-runs", "", nil, nil, 401)
	c.call("POST", "/api/v1/workflow-runs/"+run.ID+"/cancel", alice.Token, nil, nil, 409)
	var other runJSON
	json.Unmarshal(c.call("POST", "/api/v1/workflow-runs", admin, map[string]any{"workflow": "oa-flow"}, nil, 201).body, &other)
	c.call("POST", "/api/v1/workflow-runs/"+other.ID+"/cancel", alice.Token, nil, nil, 404)
	c.call("POST", "/api/v1/workflow-runs/"+other.ID+"/cancel", admin, map[string]any{"reason": strings.Repeat("r", 300)}, nil, 400)
	c.call("POST", "/api/v1/workflow-runs/"+other.ID+"/cancel", "", nil, nil, 401)
	c.call("POST", "/api/v1/workflow-runs/"+other.ID+"/cancel", admin, strings.Repeat(" ", maxBodyBytes+1), nil, 413)
	c.call("POST", "/api/v1/workflow-runs/"+other.ID+"/cancel", admin, map[string]any{"reason": "enough"}, nil, 200)
	c.call("POST", "/api/v1/workflows/oa-flow/versions", "", nil, nil, 401)
	c.call("POST", "/api/v1/workflows/oa-flow/rollback", "", nil, nil, 401)
}
