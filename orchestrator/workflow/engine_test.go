package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/local"
	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/membus"
	"github.com/cosmic-horizons/horizons/orchestrator"
	"github.com/cosmic-horizons/horizons/orchestrator/memstore"
	"github.com/cosmic-horizons/horizons/orchestrator/workflow"
)

// gate releases blocked echo runs by dataset id.
type gate struct {
	mu   sync.Mutex
	open map[string]chan struct{}
}

func (g *gate) ch(ds string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open == nil {
		g.open = map[string]chan struct{}{}
	}
	c, ok := g.open[ds]
	if !ok {
		c = make(chan struct{})
		g.open[ds] = c
	}
	return c
}

func (g *gate) release(ds string) { close(g.ch(ds)) }

// echoAgent returns {"dataset_id", "value", "n"} from its params; it fails
// when fail is true and waits for its gate when block is true.
func echoAgent(g *gate) agents.Agent {
	return agents.New(agents.Descriptor{
		Name:        "echo",
		Description: "test agent: echoes its params",
		Params: []agents.Param{
			{Name: "value", Type: agents.String, Default: ""},
			{Name: "n", Type: agents.Integer, Default: int64(0)},
			{Name: "fail", Type: agents.Boolean, Default: false},
			{Name: "block", Type: agents.Boolean, Default: false},
		},
		BaseSeconds: 1, ParallelFraction: 0.5, MemoryMBPerGB: 1,
		Run: func(ctx context.Context, in agents.Input, progress agents.ProgressFunc) (agents.Output, error) {
			var p struct {
				Value string `json:"value"`
				N     int    `json:"n"`
				Fail  bool   `json:"fail"`
				Block bool   `json:"block"`
			}
			if err := json.Unmarshal(in.Params, &p); err != nil {
				return agents.Output{}, err
			}
			if p.Block {
				select {
				case <-ctx.Done():
					return agents.Output{}, ctx.Err()
				case <-g.ch(in.DatasetID):
				}
			}
			if p.Fail {
				return agents.Output{}, errors.New("echo asked to fail")
			}
			res, _ := json.Marshal(map[string]any{"dataset_id": in.DatasetID, "value": p.Value, "n": p.N})
			return agents.Output{Summary: "echo " + p.Value, Result: res}, nil
		},
	})
}

type env struct {
	orch  *orchestrator.Orchestrator
	eng   *workflow.Engine
	store workflow.Store
	bus   *events.Bus
	gate  *gate
	jobs  orchestrator.Store
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newEnv starts an orchestrator on a local backend running the echo agent
// and an engine on store (a new MemStore when nil).
func newEnv(t testing.TB, store workflow.Store) *env {
	t.Helper()
	g := &gate{}
	reg := agents.NewRegistry()
	if err := reg.Register(echoAgent(g)); err != nil {
		t.Fatal(err)
	}
	b, err := local.Open(&local.Config{Agents: reg, Workers: 16, Logger: quiet()}, &backends.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	bus := membus.NewBus(nil)
	jobs := memstore.New(nil)
	o, err := orchestrator.New(jobs, bus, &orchestrator.Config{
		Backends: []*backends.Backend{b}, Agents: reg, Logger: quiet(),
		PollInterval: 5 * time.Millisecond, ScheduleInterval: 5 * time.Millisecond,
		Retry: orchestrator.RetryPolicy{MaxAttempts: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := o.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if store == nil {
		store = workflow.NewMemStore()
	}
	e := &env{orch: o, store: store, bus: bus, gate: g, jobs: jobs}
	e.eng = e.newEngine(t)
	t.Cleanup(func() {
		_ = e.eng.Stop(ctx)
		_ = o.Stop(ctx)
		_ = b.Close()
		_ = bus.Close()
	})
	return e
}

func (e *env) newEngine(t testing.TB) *workflow.Engine {
	t.Helper()
	eng, err := workflow.New(e.orch, e.store, e.bus, &workflow.Config{Logger: quiet(), PollInterval: 10 * time.Millisecond, OutboxInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return eng
}

func params(kv ...any) json.RawMessage {
	m := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	b, _ := json.Marshal(m)
	return b
}

// waitRun waits for the run to end and returns it.
func waitRun(t *testing.T, eng *workflow.Engine, id string) *workflow.Run {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r, err := eng.GetRun(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State.Terminal() {
			return r
		}
		time.Sleep(5 * time.Millisecond)
	}
	r, _ := eng.GetRun(context.Background(), id)
	t.Fatalf("run %s did not end: %+v", id, r)
	return nil
}

// waitStep waits until the step reaches state.
func waitStep(t *testing.T, eng *workflow.Engine, id, step string, state workflow.StepState) *workflow.Run {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r, err := eng.GetRun(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if s := r.Step(step); s != nil && s.State == state {
			return r
		}
		time.Sleep(5 * time.Millisecond)
	}
	r, _ := eng.GetRun(context.Background(), id)
	t.Fatalf("step %s of run %s never reached %s: %+v", step, id, state, r)
	return nil
}

func job(t *testing.T, e *env, r *workflow.Run, step string) *orchestrator.Job {
	t.Helper()
	s := r.Step(step)
	if s == nil || s.JobID == "" {
		t.Fatalf("step %s has no job: %+v", step, s)
	}
	j, err := e.orch.Get(context.Background(), s.JobID)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// diamond: a → (b, c) → d, passing outputs.
func diamond() workflow.Definition {
	return workflow.Definition{
		Name:   "diamond",
		Inputs: map[string]string{"ds": "", "greeting": "hello"},
		Steps: []workflow.Step{
			{Name: "d", Agent: "echo", DatasetID: "${steps.b.outputs.ds}", DependsOn: []string{"b", "c"},
				Params:  params("value", "${steps.b.outputs.v}+${steps.c.outputs.v}", "n", "${steps.c.outputs.n}"),
				Outputs: map[string]string{"v": "result.value"}},
			{Name: "a", Agent: "echo", DatasetID: "${inputs.ds}", Params: params("value", "${inputs.greeting}", "n", 7),
				Outputs: map[string]string{"v": "result.value", "ds": "result.dataset_id", "n": "result.n"}},
			{Name: "b", Agent: "echo", DatasetID: "${steps.a.outputs.ds}/b", DependsOn: []string{"a"},
				Params:  params("value", "b-of-${steps.a.outputs.v}"),
				Outputs: map[string]string{"v": "result.value", "ds": "result.dataset_id"}},
			{Name: "c", Agent: "echo", DatasetID: "${inputs.ds}/c", DependsOn: []string{"a"},
				Params:  params("value", "c", "n", "${steps.a.outputs.n}"),
				Outputs: map[string]string{"v": "result.value", "n": "result.n"}},
		},
	}
}

func TestRunFanOutFanInPassesOutputs(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, _, err := e.eng.Create(ctx, "alice", diamond()); err != nil {
		t.Fatal(err)
	}
	subCtx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	sub, err := e.bus.Subscribe(subCtx, events.TopicWorkflows)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.eng.Submit(ctx, "alice", workflow.RunRequest{Workflow: "diamond", Inputs: map[string]string{"ds": "vlass/T01"}, CorrelationID: "corr-diamond"})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != workflow.RunRunning || r.Version != 1 || r.Inputs["greeting"] != "hello" {
		t.Fatalf("submitted run %+v", r)
	}
	r = waitRun(t, e.eng, r.ID)
	if r.State != workflow.RunCompleted {
		t.Fatalf("run ended %s: %s (%+v)", r.State, r.Error, r.Steps)
	}
	ja, jb, jc, jd := job(t, e, r, "a"), job(t, e, r, "b"), job(t, e, r, "c"), job(t, e, r, "d")
	// Order: b and c start after a finished; d after both.
	for _, x := range []*orchestrator.Job{jb, jc} {
		if x.CreatedAt.Before(ja.FinishedAt) {
			t.Errorf("job %s created %v before a finished %v", x.DatasetID, x.CreatedAt, ja.FinishedAt)
		}
		if jd.CreatedAt.Before(x.FinishedAt) {
			t.Errorf("d created %v before %s finished %v", jd.CreatedAt, x.DatasetID, x.FinishedAt)
		}
	}
	// Outputs passed on, typed when a whole value is one reference.
	if jb.DatasetID != "vlass/T01/b" || jc.DatasetID != "vlass/T01/c" || jd.DatasetID != "vlass/T01/b" {
		t.Errorf("datasets b=%s c=%s d=%s", jb.DatasetID, jc.DatasetID, jd.DatasetID)
	}
	var pd struct {
		Value string `json:"value"`
		N     int    `json:"n"`
	}
	if err := json.Unmarshal(jd.Params, &pd); err != nil || pd.Value != "b-of-hello+c" || pd.N != 7 {
		t.Errorf("d params %s (%v), want value b-of-hello+c and n 7", jd.Params, err)
	}
	if got := string(r.Step("d").Outputs); got != `{"v":"b-of-hello+c"}` {
		t.Errorf("d outputs %s", got)
	}
	for _, j := range []*orchestrator.Job{ja, jb, jc, jd} {
		if j.WorkflowID != r.ID || j.CorrelationID != "corr-diamond" || j.Owner != "alice" {
			t.Errorf("job %s: workflow %q correlation %q owner %q", j.ID, j.WorkflowID, j.CorrelationID, j.Owner)
		}
	}
	// Events: stored in sequence, and forwarded to the bus.
	evs, err := e.eng.RunEvents(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for i, ev := range evs {
		if ev.Sequence != int64(i+1) || ev.Subject != r.ID || ev.CorrelationID != "corr-diamond" {
			t.Errorf("event %d: sequence %d subject %s correlation %s", i, ev.Sequence, ev.Subject, ev.CorrelationID)
		}
		types = append(types, string(ev.Type))
	}
	want := "workflow.submitted workflow.step_started " + // a
		"workflow.step_completed workflow.step_started workflow.step_started " + // a done, b and c
		"workflow.step_completed workflow.step_completed workflow.step_started " + // b, c (any order), d
		"workflow.step_completed workflow.completed"
	if got := strings.Join(types, " "); !sameMultiset(got, want) || types[0] != "workflow.submitted" || types[len(types)-1] != "workflow.completed" {
		t.Errorf("events\n got %s\nwant %s", got, want)
	}
	seen := 0
	timeout := time.After(10 * time.Second)
	for seen < len(evs) {
		select {
		case d := <-sub:
			d.Ack()
			if d.Event.Subject == r.ID {
				seen++
			}
		case <-timeout:
			t.Fatalf("bus delivered %d of %d run events", seen, len(evs))
		}
	}
}

func sameMultiset(a, b string) bool {
	count := map[string]int{}
	for _, w := range strings.Fields(a) {
		count[w]++
	}
	for _, w := range strings.Fields(b) {
		count[w]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

// branches: ok → (bad, slow, after-bad ← bad, after-slow ← slow).
func branches(policy workflow.FailurePolicy) workflow.Definition {
	return workflow.Definition{
		Name: "branches-" + strings.ReplaceAll(string(policy), "_", "-"), FailurePolicy: policy,
		Steps: []workflow.Step{
			{Name: "ok", Agent: "echo", DatasetID: "ok"},
			{Name: "bad", Agent: "echo", DatasetID: "bad", DependsOn: []string{"ok"}, Params: params("fail", true)},
			{Name: "slow", Agent: "echo", DatasetID: "slow-" + string(policy), DependsOn: []string{"ok"}, Params: params("block", true)},
			{Name: "after-bad", Agent: "echo", DatasetID: "x", DependsOn: []string{"bad"}},
			{Name: "after-slow", Agent: "echo", DatasetID: "y", DependsOn: []string{"slow"}},
		},
	}
}

func TestFailFastCancelsTheRest(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, _, err := e.eng.Create(ctx, "bob", branches(workflow.FailFast)); err != nil {
		t.Fatal(err)
	}
	r, err := e.eng.Submit(ctx, "bob", workflow.RunRequest{Workflow: "branches-fail-fast"})
	if err != nil {
		t.Fatal(err)
	}
	r = waitRun(t, e.eng, r.ID)
	if r.State != workflow.RunFailed || !strings.Contains(r.Error, "step bad failed") || !strings.Contains(r.Error, "echo asked to fail") {
		t.Fatalf("run %s error %q", r.State, r.Error)
	}
	want := map[string]workflow.StepState{"ok": workflow.StepCompleted, "bad": workflow.StepFailed, "slow": workflow.StepCancelled, "after-bad": workflow.StepSkipped, "after-slow": workflow.StepSkipped}
	for name, st := range want {
		if got := r.Step(name).State; got != st {
			t.Errorf("step %s: %s (%s), want %s", name, got, r.Step(name).Error, st)
		}
	}
	if j := job(t, e, r, "slow"); j.State != orchestrator.StateCancelled {
		t.Errorf("slow's job is %s, want CANCELLED", j.State)
	}
	evs, _ := e.eng.RunEvents(ctx, r.ID)
	last := evs[len(evs)-1]
	var d events.WorkflowData
	if err := last.Decode(&d); err != nil || last.Type != events.WorkflowFailed || d.State != "FAILED" || d.Error == "" {
		t.Errorf("last event %s %+v", last.Type, d)
	}
}

func TestContinueRunsIndependentBranches(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, _, err := e.eng.Create(ctx, "bob", branches(workflow.Continue)); err != nil {
		t.Fatal(err)
	}
	r, err := e.eng.Submit(ctx, "bob", workflow.RunRequest{Workflow: "branches-continue"})
	if err != nil {
		t.Fatal(err)
	}
	r = waitStep(t, e.eng, r.ID, "bad", workflow.StepFailed)
	r = waitStep(t, e.eng, r.ID, "after-bad", workflow.StepSkipped)
	if r.State != workflow.RunRunning || r.Step("slow").State != workflow.StepRunning {
		t.Fatalf("after bad failed: run %s, slow %s", r.State, r.Step("slow").State)
	}
	e.gate.release("slow-continue")
	r = waitRun(t, e.eng, r.ID)
	want := map[string]workflow.StepState{"ok": workflow.StepCompleted, "bad": workflow.StepFailed, "slow": workflow.StepCompleted, "after-bad": workflow.StepSkipped, "after-slow": workflow.StepCompleted}
	for name, st := range want {
		if got := r.Step(name).State; got != st {
			t.Errorf("step %s: %s (%s), want %s", name, got, r.Step(name).Error, st)
		}
	}
	if r.State != workflow.RunFailed || !strings.Contains(r.Error, "step bad failed") {
		t.Errorf("run %s error %q, want FAILED naming step bad", r.State, r.Error)
	}
}

func TestCancelRunCancelsRunningSteps(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	d := workflow.Definition{Name: "cancel-me", Steps: []workflow.Step{
		{Name: "one", Agent: "echo", DatasetID: "block-1", Params: params("block", true)},
		{Name: "two", Agent: "echo", DatasetID: "block-2", Params: params("block", true)},
		{Name: "three", Agent: "echo", DatasetID: "z", DependsOn: []string{"one", "two"}},
	}}
	if _, _, err := e.eng.Create(ctx, "carol", d); err != nil {
		t.Fatal(err)
	}
	r, err := e.eng.Submit(ctx, "carol", workflow.RunRequest{Workflow: "cancel-me"})
	if err != nil {
		t.Fatal(err)
	}
	waitStep(t, e.eng, r.ID, "one", workflow.StepRunning)
	waitStep(t, e.eng, r.ID, "two", workflow.StepRunning)
	r, err = e.eng.Cancel(ctx, r.ID, "changed my mind")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != workflow.RunCancelled || r.Step("three").State != workflow.StepSkipped {
		t.Fatalf("after cancel: %+v", r)
	}
	for _, s := range []string{"one", "two"} {
		if r.Step(s).State != workflow.StepCancelled {
			t.Errorf("step %s %s", s, r.Step(s).State)
		}
		if j := job(t, e, r, s); j.State != orchestrator.StateCancelled {
			t.Errorf("job of %s is %s, want CANCELLED", s, j.State)
		}
	}
	if again, err := e.eng.Cancel(ctx, r.ID, ""); err != nil || again.State != workflow.RunCancelled {
		t.Errorf("cancel again: %v %v", again, err)
	}
	evs, _ := e.eng.RunEvents(ctx, r.ID)
	if last := evs[len(evs)-1]; last.Type != events.WorkflowCancelled {
		t.Errorf("last event %s", last.Type)
	}
	// A finished run cannot be cancelled.
	d2 := workflow.Definition{Name: "quick", Steps: []workflow.Step{{Name: "q", Agent: "echo", DatasetID: "q"}}}
	if _, _, err := e.eng.Create(ctx, "carol", d2); err != nil {
		t.Fatal(err)
	}
	r2, _ := e.eng.Submit(ctx, "carol", workflow.RunRequest{Workflow: "quick"})
	waitRun(t, e.eng, r2.ID)
	if _, err := e.eng.Cancel(ctx, r2.ID, ""); !errors.Is(err, workflow.ErrConflict) {
		t.Errorf("cancel completed run: %v, want ErrConflict", err)
	}
}

func TestUnresolvableOutputFailsStep(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	d := workflow.Definition{Name: "missing-output", Steps: []workflow.Step{
		{Name: "a", Agent: "echo", DatasetID: "a", Outputs: map[string]string{"img": "result.image_path"}},
		{Name: "b", Agent: "echo", DatasetID: "${steps.a.outputs.img}", DependsOn: []string{"a"}},
	}}
	if _, _, err := e.eng.Create(ctx, "dave", d); err != nil {
		t.Fatal(err)
	}
	r, _ := e.eng.Submit(ctx, "dave", workflow.RunRequest{Workflow: "missing-output"})
	r = waitRun(t, e.eng, r.ID)
	a := r.Step("a")
	if r.State != workflow.RunFailed || a.State != workflow.StepFailed || !strings.Contains(a.Error, `output "img"`) || !strings.Contains(a.Error, "result.image_path") {
		t.Errorf("run %s, step a %s %q", r.State, a.State, a.Error)
	}
	if r.Step("b").State != workflow.StepSkipped || r.Step("b").JobID != "" {
		t.Errorf("step b %+v, want SKIPPED without a job", r.Step("b"))
	}
	// A resolved value the agent rejects fails the step with the reason.
	d2 := workflow.Definition{Name: "bad-type", Steps: []workflow.Step{
		{Name: "a", Agent: "echo", DatasetID: "a", Outputs: map[string]string{"v": "result.value"}},
		{Name: "b", Agent: "echo", DatasetID: "b", DependsOn: []string{"a"}, Params: params("n", "${steps.a.outputs.v}")},
	}}
	if _, _, err := e.eng.Create(ctx, "dave", d2); err != nil {
		t.Fatal(err)
	}
	r2, _ := e.eng.Submit(ctx, "dave", workflow.RunRequest{Workflow: "bad-type"})
	r2 = waitRun(t, e.eng, r2.ID)
	if b := r2.Step("b"); b.State != workflow.StepFailed || !strings.Contains(b.Error, "params.n") {
		t.Errorf("step b %s %q, want FAILED naming params.n", b.State, b.Error)
	}
}

func TestVersionsPinRunsAndRollBack(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	v1 := workflow.Definition{Name: "versions", Steps: []workflow.Step{{Name: "s", Agent: "echo", DatasetID: "v1", Params: params("block", true)}}}
	if _, _, err := e.eng.Create(ctx, "erin", v1); err != nil {
		t.Fatal(err)
	}
	run1, err := e.eng.Submit(ctx, "erin", workflow.RunRequest{Workflow: "versions"})
	if err != nil {
		t.Fatal(err)
	}
	v2 := workflow.Definition{Steps: []workflow.Step{{Name: "s2", Agent: "echo", DatasetID: "v2"}}}
	w, d2, err := e.eng.Publish(ctx, "erin", "versions", v2)
	if err != nil {
		t.Fatal(err)
	}
	if w.CurrentVersion != 2 || w.LatestVersion != 2 || d2.Version != 2 {
		t.Fatalf("after publish %+v, version %d", w, d2.Version)
	}
	run2, _ := e.eng.Submit(ctx, "erin", workflow.RunRequest{Workflow: "versions"})
	if run2.Version != 2 || run2.Steps[0].Name != "s2" {
		t.Errorf("run after publish: version %d steps %+v", run2.Version, run2.Steps)
	}
	e.gate.release("v1")
	run1 = waitRun(t, e.eng, run1.ID)
	if run1.Version != 1 || run1.State != workflow.RunCompleted || job(t, e, run1, "s").DatasetID != "v1" {
		t.Errorf("pinned run: version %d state %s", run1.Version, run1.State)
	}
	w, err = e.eng.Rollback(ctx, "versions", 1)
	if err != nil || w.CurrentVersion != 1 || w.LatestVersion != 2 {
		t.Fatalf("rollback: %+v %v", w, err)
	}
	run3, _ := e.eng.Submit(ctx, "erin", workflow.RunRequest{Workflow: "versions"})
	if run3.Version != 1 {
		t.Errorf("run after rollback uses version %d", run3.Version)
	}
	if _, err := e.eng.Rollback(ctx, "versions", 3); !errors.Is(err, workflow.ErrNotFound) {
		t.Errorf("rollback to version 3: %v", err)
	}
	if _, _, err := e.eng.Publish(ctx, "erin", "nope", v2); !errors.Is(err, workflow.ErrNotFound) {
		t.Errorf("publish unknown: %v", err)
	}
	if _, _, err := e.eng.Create(ctx, "erin", v1); !errors.Is(err, workflow.ErrConflict) {
		t.Errorf("create twice: %v", err)
	}
	bad := workflow.Definition{Steps: []workflow.Step{{Name: "s", Agent: "nope", DatasetID: "x"}}}
	if _, _, err := e.eng.Publish(ctx, "erin", "versions", bad); !errors.Is(err, workflow.ErrInvalid) {
		t.Errorf("publish invalid: %v", err)
	}
	if w, _ := e.store.GetWorkflow(ctx, "versions"); w.LatestVersion != 2 {
		t.Errorf("an invalid publish changed the workflow: %+v", w)
	}
	// Inputs are checked at submission.
	if _, err := e.eng.Submit(ctx, "erin", workflow.RunRequest{Workflow: "versions", Inputs: map[string]string{"x": "1"}}); !fieldIs(err, "inputs.x") {
		t.Errorf("unknown input: %v", err)
	}
	if _, err := e.eng.Submit(ctx, "erin", workflow.RunRequest{Workflow: "versions", Version: 9}); !fieldIs(err, "version") {
		t.Errorf("unknown version: %v", err)
	}
	if _, err := e.eng.Submit(ctx, "erin", workflow.RunRequest{Workflow: "nope"}); !errors.Is(err, workflow.ErrNotFound) {
		t.Errorf("unknown workflow: %v", err)
	}
}

func fieldIs(err error, field string) bool {
	var fe *workflow.FieldError
	return errors.As(err, &fe) && fe.Field == field
}

// TestResumeAfterRestart stops the engine while a step runs and after a job
// was submitted but not recorded; a new engine on the same stores finishes
// the run without submitting anything twice.
func TestResumeAfterRestart(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testResume(t, nil) })
	t.Run("sqlite", func(t *testing.T) {
		_, s := openSQLite(t, filepath.Join(t.TempDir(), "jobs.db"))
		testResume(t, s)
	})
}

func testResume(t *testing.T, store workflow.Store) {
	e := newEnv(t, store)
	ctx := context.Background()
	d := workflow.Definition{Name: "resume", Steps: []workflow.Step{
		{Name: "a", Agent: "echo", DatasetID: "resume-a", Params: params("block", true), Outputs: map[string]string{"ds": "result.dataset_id"}},
		{Name: "b", Agent: "echo", DatasetID: "${steps.a.outputs.ds}-b", DependsOn: []string{"a"}},
	}}
	if _, _, err := e.eng.Create(ctx, "frank", d); err != nil {
		t.Fatal(err)
	}
	r, _ := e.eng.Submit(ctx, "frank", workflow.RunRequest{Workflow: "resume"})
	waitStep(t, e.eng, r.ID, "a", workflow.StepRunning)
	if err := e.eng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// While no engine runs: a finishes, and b's job is submitted as a
	// crashed engine would have done before recording it.
	e.gate.release("resume-a")
	cur, _ := e.store.GetRun(ctx, r.ID)
	ja := job(t, e, cur, "a")
	for deadline := time.Now().Add(10 * time.Second); ja.State != orchestrator.StateCompleted && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		ja, _ = e.orch.Get(ctx, ja.ID)
	}
	early, _, err := e.orch.Submit(ctx, "frank", orchestrator.Spec{Agent: "echo", DatasetID: "resume-a-b", WorkflowID: r.ID, IdempotencyKey: "wf:" + r.ID + ":b"})
	if err != nil {
		t.Fatal(err)
	}
	if cur, _ := e.store.GetRun(ctx, r.ID); cur.Step("a").State != workflow.StepRunning {
		t.Fatalf("a stopped engine advanced the run: %+v", cur.Step("a"))
	}
	eng2 := e.newEngine(t)
	t.Cleanup(func() { _ = eng2.Stop(ctx) })
	done := waitRun(t, eng2, r.ID)
	if done.State != workflow.RunCompleted || done.Step("b").JobID != early.ID {
		t.Errorf("resumed run %s, step b job %s, want the job submitted before the restart %s", done.State, done.Step("b").JobID, early.ID)
	}
	page, err := e.orch.List(ctx, orchestrator.ListQuery{WorkflowID: r.ID})
	if err != nil || len(page.Jobs) != 2 {
		t.Errorf("run has %d jobs (%v), want 2", len(page.Jobs), err)
	}
}

func TestEngineParallelRuns(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, _, err := e.eng.Create(ctx, "gina", diamond()); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 10 {
		r, err := e.eng.Submit(ctx, "gina", workflow.RunRequest{Workflow: "diamond", Inputs: map[string]string{"ds": fmt.Sprintf("ds-%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	for _, id := range ids {
		if r := waitRun(t, e.eng, id); r.State != workflow.RunCompleted {
			t.Errorf("run %s: %s %s", id, r.State, r.Error)
		}
	}
	runs, err := e.eng.ListRuns(ctx, "gina", 0)
	if err != nil || len(runs) != 10 {
		t.Errorf("ListRuns: %d, %v", len(runs), err)
	}
}

func TestSubmitChecksInputDatasets(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	_, err := e.eng.Submit(ctx, "hal", workflow.RunRequest{Workflow: workflow.VLASSPipeline, Inputs: map[string]string{"dataset_id": "bad dataset!"}})
	if !fieldIs(err, "inputs.dataset_id") || !strings.Contains(err.Error(), "bad dataset!") {
		t.Errorf("bad input dataset: %v, want a FieldError for inputs.dataset_id", err)
	}
	if _, err := e.eng.Submit(ctx, "hal", workflow.RunRequest{Workflow: workflow.VLASSPipeline}); !fieldIs(err, "inputs.dataset_id") {
		t.Errorf("missing required input: %v", err)
	}
	if runs, _ := e.eng.ListRuns(ctx, "", 0); len(runs) != 0 {
		t.Errorf("rejected submissions stored %d runs", len(runs))
	}
}

func TestCreateRejectsStepsNoBackendRuns(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	// The local backend of newEnv has no GPUs.
	d := workflow.Definition{Name: "too-big", Steps: []workflow.Step{
		{Name: "ok", Agent: "echo", DatasetID: "x"},
		{Name: "big", Agent: "echo", DatasetID: "x", GPUs: 4, DependsOn: []string{"ok"}},
	}}
	_, _, err := e.eng.Create(ctx, "ivy", d)
	if !fieldIs(err, "steps[big].gpus") || !strings.Contains(err.Error(), "no configured backend") {
		t.Fatalf("step over every backend's GPUs: %v", err)
	}
	if _, err := e.store.GetWorkflow(ctx, "too-big"); !errors.Is(err, workflow.ErrNotFound) {
		t.Errorf("a rejected definition was stored: %v", err)
	}
}
