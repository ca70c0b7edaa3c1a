package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/orchestrator"
	"github.com/cosmic-horizons/horizons/orchestrator/sqlstore"
	"github.com/cosmic-horizons/horizons/orchestrator/workflow"
)

// Workflows: the engine of package orchestrator/workflow on the job
// store's database (its own workflow_* tables) and the REST API:
//
//	POST /api/v1/workflows                     create (version 1)
//	GET  /api/v1/workflows                     list, with current definitions
//	POST /api/v1/workflows/{name}/versions     publish the next version
//	POST /api/v1/workflows/{name}/rollback     {"version": N} makes N current
//	POST /api/v1/workflow-runs                 start a run
//	GET  /api/v1/workflow-runs                 list the caller's runs
//	GET  /api/v1/workflow-runs/{id}            one run
//	GET  /api/v1/workflow-runs/{id}/events     its workflow.* events
//	POST /api/v1/workflow-runs/{id}/cancel     cancel it
//
// Definitions are a shared catalogue: every user sees and runs every
// workflow; only its owner (or an admin) publishes versions or rolls back.
// The built-in vlass-pipeline is owned by "system", so only admins change
// it. Runs are scoped like jobs: a user sees only their own runs (another
// user's run is a 404), an admin sees all.

// workflowSystem is the workflow engine and its event metrics consumer.
type workflowSystem struct {
	eng    *workflow.Engine
	events *prometheus.CounterVec
	cancel context.CancelFunc
	done   chan struct{}
}

// openWorkflows opens the workflow store on the job store's handle and
// the engine. It starts with startWorkflows, after the orchestrator.
func (s *server) openWorkflows(ctx context.Context, poll time.Duration) error {
	js, ok := s.store.(*sqlstore.Store)
	if !ok {
		return fmt.Errorf("workflows: the job store is a %T, not a SQL store", s.store)
	}
	dialect := "postgres"
	if strings.Contains(fmt.Sprintf("%T", js.DB().Driver()), "sqlite") {
		dialect = "sqlite"
	}
	st, err := workflow.OpenSQL(ctx, js.DB(), &workflow.SQLConfig{Dialect: dialect})
	if err != nil {
		return fmt.Errorf("workflow store: %w", err)
	}
	eng, err := workflow.New(s.orch, st, s.bus, &workflow.Config{Logger: s.log, PollInterval: poll, OutboxInterval: poll})
	if err != nil {
		return err
	}
	s.wf = &workflowSystem{
		eng: eng,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "horizons_workflow_events_total",
			Help: "Workflow run events received from the bus, by type.",
		}, []string{"type"}),
	}
	s.metrics.reg.MustRegister(s.wf.events)
	return nil
}

// startWorkflows subscribes the metrics consumer to the workflow topic and
// starts the engine (which resumes the runs a previous process left).
func (s *server) startWorkflows(ctx context.Context) error {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ch, err := s.bus.Subscribe(sctx, events.TopicWorkflows)
	if err != nil {
		cancel()
		return fmt.Errorf("subscribe to %s: %w", events.TopicWorkflows, err)
	}
	s.wf.cancel, s.wf.done = cancel, make(chan struct{})
	go func() {
		defer close(s.wf.done)
		for d := range ch {
			s.wf.events.WithLabelValues(string(d.Event.Type)).Inc()
			d.Ack()
		}
	}()
	return s.wf.eng.Start(ctx)
}

// stop stops the engine (its last outbox sweep still reaches the bus) and
// then the consumer.
func (w *workflowSystem) stop(ctx context.Context) error {
	err := w.eng.Stop(ctx)
	if w.cancel != nil {
		w.cancel()
		select {
		case <-w.done:
		case <-ctx.Done():
		}
	}
	return err
}

// workflowRequest is the body of POST /api/v1/workflows and
// POST /api/v1/workflows/{name}/versions (where name may be left out).
type workflowRequest struct {
	Name          string                 `json:"name"`
	Description   string                 `json:"description"`
	FailurePolicy workflow.FailurePolicy `json:"failure_policy"`
	Inputs        map[string]string      `json:"inputs"`
	Steps         []workflow.Step        `json:"steps"`
}

func (q workflowRequest) definition() workflow.Definition {
	return workflow.Definition{Name: q.Name, Description: q.Description, FailurePolicy: q.FailurePolicy, Inputs: q.Inputs, Steps: q.Steps}
}

// workflowJSON is a workflow as the API shows it, with the definition of
// its current version (or of the version just published).
type workflowJSON struct {
	Name           string               `json:"name"`
	Owner          string               `json:"owner"`
	CurrentVersion int                  `json:"current_version"`
	LatestVersion  int                  `json:"latest_version"`
	CreatedAt      *time.Time           `json:"created_at"`
	UpdatedAt      *time.Time           `json:"updated_at"`
	Definition     *workflow.Definition `json:"definition"`
}

func toWorkflowJSON(w *workflow.Workflow, d *workflow.Definition) workflowJSON {
	return workflowJSON{
		Name: w.Name, Owner: w.Owner, CurrentVersion: w.CurrentVersion, LatestVersion: w.LatestVersion,
		CreatedAt: timePtr(w.CreatedAt), UpdatedAt: timePtr(w.UpdatedAt), Definition: d,
	}
}

type workflowList struct {
	Workflows []workflowJSON `json:"workflows"`
}

type rollbackRequest struct {
	Version int `json:"version"`
}

type runRequest struct {
	Workflow string            `json:"workflow"`
	Version  int               `json:"version"`
	Inputs   map[string]string `json:"inputs"`
}

type stepJSON struct {
	Name       string          `json:"name"`
	State      string          `json:"state"`
	JobID      string          `json:"job_id"`
	Outputs    json.RawMessage `json:"outputs"`
	Error      string          `json:"error"`
	StartedAt  *time.Time      `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at"`
}

type runJSON struct {
	ID            string            `json:"id"`
	Owner         string            `json:"owner"`
	Workflow      string            `json:"workflow"`
	Version       int               `json:"version"`
	Inputs        map[string]string `json:"inputs"`
	CorrelationID string            `json:"correlation_id"`
	State         string            `json:"state"`
	Error         string            `json:"error"`
	Steps         []stepJSON        `json:"steps"`
	CreatedAt     *time.Time        `json:"created_at"`
	UpdatedAt     *time.Time        `json:"updated_at"`
	FinishedAt    *time.Time        `json:"finished_at"`
}

func toRunJSON(r *workflow.Run) runJSON {
	out := runJSON{
		ID: r.ID, Owner: r.Owner, Workflow: r.Workflow, Version: r.Version, Inputs: r.Inputs,
		CorrelationID: r.CorrelationID, State: string(r.State), Error: r.Error, Steps: []stepJSON{},
		CreatedAt: timePtr(r.CreatedAt), UpdatedAt: timePtr(r.UpdatedAt), FinishedAt: timePtr(r.FinishedAt),
	}
	if out.Inputs == nil {
		out.Inputs = map[string]string{}
	}
	for _, st := range r.Steps {
		outs := st.Outputs
		if len(outs) == 0 {
			outs = json.RawMessage(`{}`)
		}
		out.Steps = append(out.Steps, stepJSON{
			Name: st.Name, State: string(st.State), JobID: st.JobID, Outputs: outs, Error: st.Error,
			StartedAt: timePtr(st.StartedAt), FinishedAt: timePtr(st.FinishedAt),
		})
	}
	return out
}

type runList struct {
	Runs []runJSON `json:"runs"`
}

// workflowRoutes registers the workflow endpoints.
func (s *server) workflowRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/workflows", s.authed(false, s.handleCreateWorkflow))
	mux.HandleFunc("GET /api/v1/workflows", s.authed(false, s.handleListWorkflows))
	mux.HandleFunc("POST /api/v1/workflows/{name}/versions", s.authed(false, s.handlePublishWorkflow))
	mux.HandleFunc("POST /api/v1/workflows/{name}/rollback", s.authed(false, s.handleRollbackWorkflow))
	mux.HandleFunc("POST /api/v1/workflow-runs", s.authed(false, s.handleSubmitRun))
	mux.HandleFunc("GET /api/v1/workflow-runs", s.authed(false, s.handleListRuns))
	mux.HandleFunc("GET /api/v1/workflow-runs/{id}", s.authed(false, s.handleGetRun))
	mux.HandleFunc("GET /api/v1/workflow-runs/{id}/events", s.authed(false, s.handleRunEvents))
	mux.HandleFunc("POST /api/v1/workflow-runs/{id}/cancel", s.authed(false, s.handleCancelRun))
}

// wfError maps workflow errors onto the API's error style; others go to
// toAPIError through writeError.
func wfError(err error) error {
	var fe *workflow.FieldError
	switch {
	case errors.As(err, &fe):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_argument", Field: fe.Field, Message: fe.Error()}
	case errors.Is(err, workflow.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: err.Error()}
	case errors.Is(err, workflow.ErrConflict):
		return &apiError{Status: http.StatusConflict, Code: "conflict", Message: err.Error()}
	case errors.Is(err, workflow.ErrClosed):
		return orchestrator.ErrClosed
	}
	return err
}

func (s *server) handleCreateWorkflow(w http.ResponseWriter, r *http.Request, u *user) {
	var req workflowRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	wf, d, err := s.wf.eng.Create(r.Context(), u.ID, req.definition())
	if err != nil {
		s.writeError(w, r, wfError(err))
		return
	}
	s.log.Info("workflow created", "workflow", wf.Name, "owner", u.Name)
	w.Header().Set("Location", "/api/v1/workflows/"+wf.Name)
	writeJSON(w, http.StatusCreated, toWorkflowJSON(wf, d))
}

func (s *server) handleListWorkflows(w http.ResponseWriter, r *http.Request, u *user) {
	ws, err := s.wf.eng.List(r.Context())
	if err != nil {
		s.writeError(w, r, wfError(err))
		return
	}
	out := workflowList{Workflows: []workflowJSON{}}
	for _, x := range ws {
		d, err := s.wf.eng.Version(r.Context(), x.Name, x.CurrentVersion)
		if err != nil {
			s.writeError(w, r, wfError(err))
			return
		}
		out.Workflows = append(out.Workflows, toWorkflowJSON(x, d))
	}
	writeJSON(w, http.StatusOK, out)
}

// mayChange checks that u owns the workflow (or is an admin).
func (s *server) mayChange(ctx context.Context, u *user, name string) error {
	wf, err := s.wf.eng.Store().GetWorkflow(ctx, name)
	if err != nil {
		return wfError(err)
	}
	if !u.isAdmin() && wf.Owner != u.ID {
		return &apiError{Status: http.StatusForbidden, Code: "permission_denied", Message: fmt.Sprintf("workflow %q belongs to another user; only its owner or an admin may change it", name)}
	}
	return nil
}

func (s *server) handlePublishWorkflow(w http.ResponseWriter, r *http.Request, u *user) {
	var req workflowRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	name := r.PathValue("name")
	if err := s.mayChange(r.Context(), u, name); err != nil {
		s.writeError(w, r, err)
		return
	}
	wf, d, err := s.wf.eng.Publish(r.Context(), u.ID, name, req.definition())
	if err != nil {
		s.writeError(w, r, wfError(err))
		return
	}
	s.log.Info("workflow version published", "workflow", wf.Name, "version", d.Version, "by", u.Name)
	writeJSON(w, http.StatusCreated, toWorkflowJSON(wf, d))
}

func (s *server) handleRollbackWorkflow(w http.ResponseWriter, r *http.Request, u *user) {
	var req rollbackRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	name := r.PathValue("name")
	if err := s.mayChange(r.Context(), u, name); err != nil {
		s.writeError(w, r, err)
		return
	}
	wf, err := s.wf.eng.Rollback(r.Context(), name, req.Version)
	if errors.Is(err, workflow.ErrNotFound) {
		err = &workflow.FieldError{Field: "version", Value: req.Version, Msg: err.Error()}
	}
	if err != nil {
		s.writeError(w, r, wfError(err))
		return
	}
	d, err := s.wf.eng.Version(r.Context(), name, wf.CurrentVersion)
	if err != nil {
		s.writeError(w, r, wfError(err))
		return
	}
	s.log.Info("workflow rolled back", "workflow", name, "version", wf.CurrentVersion, "by", u.Name)
	writeJSON(w, http.StatusOK, toWorkflowJSON(wf, d))
}

func (s *server) handleSubmitRun(w http.ResponseWriter, r *http.Request, u *user) {
	var req runRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	corr, err := correlationID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	run, err := s.wf.eng.Submit(r.Context(), u.ID, workflow.RunRequest{Workflow: req.Workflow, Version: req.Version, Inputs: req.Inputs, CorrelationID: corr})
	if errors.Is(err, workflow.ErrNotFound) {
		err = &workflow.FieldError{Field: "workflow", Value: req.Workflow, Msg: "no such workflow"}
	}
	if err != nil {
		s.writeError(w, r, wfError(err))
		return
	}
	w.Header().Set("Location", "/api/v1/workflow-runs/"+run.ID)
	w.Header().Set("X-Correlation-ID", run.CorrelationID)
	writeJSON(w, http.StatusCreated, toRunJSON(run))
}

// ownedRun returns the run if u may see it; another user's run is
// reported exactly like a missing one.
func (s *server) ownedRun(ctx context.Context, u *user, id string) (*workflow.Run, error) {
	run, err := s.wf.eng.GetRun(ctx, id)
	if errors.Is(err, workflow.ErrNotFound) || err == nil && !u.isAdmin() && run.Owner != u.ID {
		return nil, notFound("workflow run", id)
	}
	if err != nil {
		return nil, wfError(err)
	}
	return run, nil
}

func (s *server) handleGetRun(w http.ResponseWriter, r *http.Request, u *user) {
	run, err := s.ownedRun(r.Context(), u, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toRunJSON(run))
}

func (s *server) handleListRuns(w http.ResponseWriter, r *http.Request, u *user) {
	limit := orchestrator.DefaultPageSize
	if l := strings.TrimSpace(r.URL.Query().Get("limit")); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > orchestrator.MaxPageSize {
			s.writeError(w, r, badRequest("limit", "limit %q must be an integer between 1 and %d", l, orchestrator.MaxPageSize))
			return
		}
		limit = n
	}
	owner := u.ID
	if u.isAdmin() {
		owner = ""
	}
	runs, err := s.wf.eng.ListRuns(r.Context(), owner, limit)
	if err != nil {
		s.writeError(w, r, wfError(err))
		return
	}
	out := runList{Runs: []runJSON{}}
	for _, x := range runs {
		out.Runs = append(out.Runs, toRunJSON(x))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) handleRunEvents(w http.ResponseWriter, r *http.Request, u *user) {
	id := r.PathValue("id")
	if _, err := s.ownedRun(r.Context(), u, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	evs, err := s.wf.eng.RunEvents(r.Context(), id)
	if err != nil {
		s.writeError(w, r, wfError(err))
		return
	}
	if evs == nil {
		evs = []events.Event{}
	}
	writeJSON(w, http.StatusOK, eventList{Events: evs})
}

func (s *server) handleCancelRun(w http.ResponseWriter, r *http.Request, u *user) {
	reason, ok := s.cancelReason(w, r, u)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if _, err := s.ownedRun(r.Context(), u, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	run, err := s.wf.eng.Cancel(r.Context(), id, reason)
	if err != nil {
		s.writeError(w, r, wfError(err))
		return
	}
	writeJSON(w, http.StatusOK, toRunJSON(run))
}
