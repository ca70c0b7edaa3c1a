package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/orchestrator"
)

// maxBodyBytes bounds every request body; larger bodies get 413.
const maxBodyBytes = 1 << 20

// maxReasonLen bounds a cancel reason.
const maxReasonLen = 256

// apiError is an error with its HTTP status, rendered as
// {"error":{"code","message","field"}}.
type apiError struct {
	Status  int
	Code    string
	Message string
	Field   string
}

func (e *apiError) Error() string { return e.Message }

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field"`
}

func badRequest(field, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_argument", Field: field, Message: fmt.Sprintf(format, args...)}
}

func notFound(what, id string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("%s %q not found", what, id)}
}

// toAPIError maps an error onto its HTTP form.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
			Message: fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)}
	}
	var fe *orchestrator.FieldError
	if errors.As(err, &fe) {
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_argument", Field: fe.Field, Message: fe.Error()}
	}
	switch {
	case errors.Is(err, errUnauthenticated):
		return &apiError{Status: http.StatusUnauthorized, Code: "unauthenticated",
			Message: "missing or unknown bearer token; send Authorization: Bearer <token>"}
	case errors.Is(err, errDuplicateUser):
		return &apiError{Status: http.StatusConflict, Code: "already_exists", Field: "name", Message: err.Error()}
	case errors.Is(err, orchestrator.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: err.Error()}
	case errors.Is(err, orchestrator.ErrConflict), errors.Is(err, orchestrator.ErrInvalidTransition):
		return &apiError{Status: http.StatusConflict, Code: "conflict", Message: err.Error()}
	case errors.Is(err, orchestrator.ErrResourceExhausted):
		return &apiError{Status: http.StatusTooManyRequests, Code: "resource_exhausted", Message: err.Error()}
	case errors.Is(err, orchestrator.ErrInvalidSpec):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_argument", Message: err.Error()}
	case errors.Is(err, orchestrator.ErrClosed), errors.Is(err, events.ErrClosed),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the server is shutting down or overloaded; retry"}
	}
	return &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":{"code":"internal","message":"encode response","field":""}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError renders err; internal errors are logged (never their request
// headers or query, which may hold a token) and hidden from the client.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := toAPIError(err)
	if ae.Status >= 500 && ae.Code == "internal" {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if ae.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="horizons"`)
	}
	writeJSON(w, ae.Status, errorBody{Error: errorDetail{Code: ae.Code, Message: ae.Message, Field: ae.Field}})
}

// decodeBody decodes one JSON object from r's body into dst, rejecting
// unknown fields, trailing data and bodies over maxBodyBytes.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any, allowEmpty bool) error {
	if r.ContentLength > maxBodyBytes {
		return &http.MaxBytesError{Limit: maxBodyBytes}
	}
	body := http.MaxBytesReader(w, r.Body, maxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, io.EOF) {
			if allowEmpty {
				return nil
			}
			return badRequest("", "request body is empty; want a JSON object")
		}
		return jsonError(err)
	}
	// Exactly one value: anything after it but white space is an error.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("", "request body holds more than one JSON value")
	}
	return nil
}

func jsonError(err error) error {
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.As(err, &se):
		return badRequest("", "request body is not valid JSON (at byte %d): %v", se.Offset, se)
	case errors.As(err, &te):
		if te.Field == "" {
			return badRequest("", "request body must be a JSON object, not %s", te.Value)
		}
		return badRequest(te.Field, "field %s: got a JSON %s, want %s", te.Field, te.Value, jsonTypeName(te.Type.Kind().String()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "request body is truncated JSON")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field, _ := strconv.Unquote(name)
		if field == "" {
			field = strings.Trim(name, `"`)
		}
		return badRequest(field, "unknown field %q", field)
	}
	return badRequest("", "cannot decode request body: %v", err)
}

func jsonTypeName(kind string) string {
	switch kind {
	case "int", "int64", "int32":
		return "an integer"
	case "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return kind
}

// jobRequest is the body of POST /api/v1/jobs.
type jobRequest struct {
	Agent          string          `json:"agent"`
	DatasetID      string          `json:"dataset_id"`
	GPUs           int             `json:"gpus"`
	Params         json.RawMessage `json:"params"`
	Priority       int             `json:"priority"`
	IdempotencyKey string          `json:"idempotency_key"`
}

// jobJSON is the job as the API shows it. Unset times are null.
type jobJSON struct {
	ID            string          `json:"id"`
	Owner         string          `json:"owner"`
	Agent         string          `json:"agent"`
	DatasetID     string          `json:"dataset_id"`
	GPUs          int             `json:"gpus"`
	Params        json.RawMessage `json:"params"`
	Priority      int             `json:"priority"`
	State         string          `json:"state"`
	Progress      float64         `json:"progress"`
	Attempts      int             `json:"attempts"`
	CorrelationID string          `json:"correlation_id"`
	Backend       string          `json:"backend"`
	Error         string          `json:"error"`
	CreatedAt     *time.Time      `json:"created_at"`
	UpdatedAt     *time.Time      `json:"updated_at"`
	StartedAt     *time.Time      `json:"started_at"`
	FinishedAt    *time.Time      `json:"finished_at"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func toJobJSON(j *orchestrator.Job) jobJSON {
	params := j.Params
	if len(params) == 0 || string(params) == "null" {
		params = json.RawMessage(`{}`)
	}
	p := j.Progress
	if p < 0 {
		p = 0
	}
	if p > 100 {
		p = 100
	}
	return jobJSON{
		ID: j.ID, Owner: j.Owner, Agent: j.Agent, DatasetID: j.DatasetID, GPUs: j.GPUs,
		Params: params, Priority: j.Priority, State: string(j.State), Progress: p,
		Attempts: j.Attempts, CorrelationID: j.CorrelationID, Backend: j.Backend, Error: j.Error,
		CreatedAt: timePtr(j.CreatedAt), UpdatedAt: timePtr(j.UpdatedAt),
		StartedAt: timePtr(j.StartedAt), FinishedAt: timePtr(j.FinishedAt),
	}
}

type jobList struct {
	Jobs       []jobJSON `json:"jobs"`
	NextCursor string    `json:"next_cursor"`
}

type eventList struct {
	Events []events.Event `json:"events"`
}

type userRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

type userResponse struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Role  string `json:"role"`
	Token string `json:"token"`
}

type cancelRequest struct {
	Reason string `json:"reason"`
}

// handleCreateUser serves POST /api/v1/users (admin only).
func (s *server) handleCreateUser(w http.ResponseWriter, r *http.Request, u *user) {
	if !u.isAdmin() {
		s.writeError(w, r, &apiError{Status: http.StatusForbidden, Code: "permission_denied", Message: "creating users needs the admin role"})
		return
	}
	var req userRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	nu, tok, err := s.auth.createUser(r.Context(), req.Name, req.Role)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("user created", "user_id", nu.ID, "name", nu.Name, "role", nu.Role, "by", u.Name)
	writeJSON(w, http.StatusCreated, userResponse{ID: nu.ID, Name: nu.Name, Role: nu.Role, Token: tok})
}

// correlationID validates the optional X-Correlation-ID header.
func correlationID(r *http.Request) (string, error) {
	c := strings.TrimSpace(r.Header.Get("X-Correlation-ID"))
	if len(c) > orchestrator.MaxCorrelationID {
		return "", badRequest("X-Correlation-ID", "header X-Correlation-ID is %d characters long; at most %d", len(c), orchestrator.MaxCorrelationID)
	}
	for _, ch := range c {
		if ch > unicode.MaxASCII || !unicode.IsPrint(ch) {
			return "", badRequest("X-Correlation-ID", "header X-Correlation-ID %q holds a character that is not printable ASCII", c)
		}
	}
	return c, nil
}

// handleSubmit serves POST /api/v1/jobs.
func (s *server) handleSubmit(w http.ResponseWriter, r *http.Request, u *user) {
	var req jobRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	corr, err := correlationID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	spec := orchestrator.Spec{
		Agent: req.Agent, DatasetID: req.DatasetID, GPUs: req.GPUs, Params: req.Params,
		Priority: req.Priority, IdempotencyKey: req.IdempotencyKey, CorrelationID: corr,
	}
	j, created, err := s.orch.Submit(r.Context(), u.ID, spec)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		s.log.Info("job submitted", "job", j.ID, "owner", u.Name, "agent", j.Agent, "correlation_id", j.CorrelationID)
	}
	w.Header().Set("Location", "/api/v1/jobs/"+j.ID)
	w.Header().Set("X-Correlation-ID", j.CorrelationID)
	writeJSON(w, status, toJobJSON(j))
}

// ownedJob returns the job if u may see it; another user's job is
// reported exactly like a missing one.
func (s *server) ownedJob(ctx context.Context, u *user, id string) (*orchestrator.Job, error) {
	j, err := s.orch.Get(ctx, id)
	if errors.Is(err, orchestrator.ErrNotFound) {
		return nil, notFound("job", id)
	}
	if err != nil {
		return nil, err
	}
	if !u.isAdmin() && j.Owner != u.ID {
		return nil, notFound("job", id)
	}
	return j, nil
}

// handleGetJob serves GET /api/v1/jobs/{id}.
func (s *server) handleGetJob(w http.ResponseWriter, r *http.Request, u *user) {
	j, err := s.ownedJob(r.Context(), u, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toJobJSON(j))
}

// handleListJobs serves GET /api/v1/jobs?state=&limit=&cursor=. state may
// list several states separated by commas.
func (s *server) handleListJobs(w http.ResponseWriter, r *http.Request, u *user) {
	qv := r.URL.Query()
	q := orchestrator.ListQuery{Cursor: qv.Get("cursor")}
	if !u.isAdmin() {
		q.Owner = u.ID
	}
	if st := strings.TrimSpace(qv.Get("state")); st != "" {
		for _, part := range strings.Split(st, ",") {
			state, err := orchestrator.ParseState(part)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			q.States = append(q.States, state)
		}
	}
	if l := strings.TrimSpace(qv.Get("limit")); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > orchestrator.MaxPageSize {
			s.writeError(w, r, badRequest("limit", "limit %q must be an integer between 1 and %d", l, orchestrator.MaxPageSize))
			return
		}
		q.Limit = n
	}
	page, err := s.orch.List(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := jobList{Jobs: make([]jobJSON, 0, len(page.Jobs)), NextCursor: page.NextCursor}
	for _, j := range page.Jobs {
		out.Jobs = append(out.Jobs, toJobJSON(j))
	}
	writeJSON(w, http.StatusOK, out)
}

// cancelReason reads the optional {"reason": "..."} body of a cancel
// request and returns what to record: "cancelled by <user>[: reason]". On
// bad input it writes the error and returns false.
func (s *server) cancelReason(w http.ResponseWriter, r *http.Request, u *user) (string, bool) {
	var req cancelRequest
	if err := decodeBody(w, r, &req, true); err != nil {
		s.writeError(w, r, err)
		return "", false
	}
	if len(req.Reason) > maxReasonLen {
		s.writeError(w, r, badRequest("reason", "reason is %d characters long; at most %d", len(req.Reason), maxReasonLen))
		return "", false
	}
	reason := "cancelled by " + u.Name
	if req.Reason != "" {
		reason += ": " + req.Reason
	}
	return reason, true
}

// handleCancel serves POST /api/v1/jobs/{id}/cancel with an optional body
// {"reason": "..."}.
func (s *server) handleCancel(w http.ResponseWriter, r *http.Request, u *user) {
	reason, ok := s.cancelReason(w, r, u)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if _, err := s.ownedJob(r.Context(), u, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	j, err := s.orch.Cancel(r.Context(), id, reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toJobJSON(j))
}

// handleJobEvents serves GET /api/v1/jobs/{id}/events.
func (s *server) handleJobEvents(w http.ResponseWriter, r *http.Request, u *user) {
	id := r.PathValue("id")
	if _, err := s.ownedJob(r.Context(), u, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	evs, err := s.orch.Events(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sort.SliceStable(evs, func(a, b int) bool { return evs[a].Sequence < evs[b].Sequence })
	if evs == nil {
		evs = []events.Event{}
	}
	writeJSON(w, http.StatusOK, eventList{Events: evs})
}

// authed wraps h with bearer-token authentication. allowQuery also accepts
// ?token= (for WebSocket and EventSource clients, which cannot set headers).
func (s *server) authed(allowQuery bool, h func(http.ResponseWriter, *http.Request, *user)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := s.auth.authenticate(r.Context(), bearerToken(r, allowQuery))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), userKey, u)), u)
	}
}
