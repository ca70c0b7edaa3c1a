// Package tapistest is an httptest server that emulates the parts of TACC
// Tapis v3 the tapis backend uses (the Authenticator's token endpoint and
// the Jobs API) and checks every request it receives and every response it
// sends against the OpenAPI documents of both services, with
// github.com/getkin/kin-openapi. A request the documents reject fails the
// test (TB.Errorf) and gets a 400; so does a response of the emulator
// itself. Object schemas that list properties are closed for the check
// (additionalProperties false), so a misspelt field fails too.
//
// The documents (spec/*.yaml) are the tapipy copies of the Jobs and
// Authenticator OpenAPI documents. One liberty is taken: Tapis serves
// {outputPath} of the output list and download paths as the whole rest of
// the path (JAX-RS {outputPath: (.*+)}), which OpenAPI 3.0 cannot express,
// so the emulator routes that rest as the one parameter (the empty rest,
// the top directory, is checked as "/").
//
// Jobs move one stage each time their record or status is read: PENDING,
// PROCESSING_INPUTS, STAGING_INPUTS, STAGING_JOB, SUBMITTING_JOB, QUEUED,
// RUNNING, ARCHIVING, FINISHED; on FINISHED the emulator writes the result
// file the job's HORIZONS_RESULT_FILE names. Tasks whose agent is one of
// the Agent* constants behave differently (fail, wait for cancel, time out,
// block).
package tapistest

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

//go:embed spec/tapis-jobs-openapi.yaml spec/tapis-authenticator-openapi.yaml
var specs embed.FS

// Agents with scripted behaviour; any other agent completes.
const (
	// AgentFail fails after running: FAILED, JOB_REMOTE_OUTCOME_ERROR.
	AgentFail = "fails"
	// AgentWait runs until cancelled.
	AgentWait = "waits"
	// AgentTimeout fails with condition SCHEDULER_TIMEOUT after running.
	AgentTimeout = "times-out"
	// AgentBlock is BLOCKED for one read after it started, then finishes.
	AgentBlock = "blocks"
)

// TB is the part of testing.TB the server reports to.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Cleanup(func())
}

// Config configures the emulator. The zero value is usable.
type Config struct {
	// Username and Password are the one user's credentials; default
	// "horizons" and "tapistest-password".
	Username, Password string
	// TokenTTL is the lifetime of minted tokens; default 4 h.
	TokenTTL time.Duration
	// AppID and AppVersion are the one app jobs may run; default
	// "horizons-agent" and "1.0".
	AppID, AppVersion string
	// Now is the server's clock; nil means time.Now.
	Now func() time.Time
}

// Request is one request the server received.
type Request struct {
	Method, Path string
	Query        url.Values
	Body         []byte
	// Token is the X-Tapis-Token header.
	Token string
	// Status is the status code sent back.
	Status int
}

// Job is the emulator's record of one job.
type Job struct {
	UUID, Name, Status, Condition, LastMessage string
	Agent, TaskID, ResultFile                  string
	// Submit is the ReqSubmitJob body as received.
	Submit  map[string]any
	Created time.Time
	Started time.Time
	Ended   time.Time
	Outputs map[string][]byte
	step    int
	num     int
	runs    int
	history []history
}

type history struct {
	at     time.Time
	status string
}

// Server is the emulator.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:34567; pass it as
	// tapis.Config.URL.
	URL string

	t    TB
	cfg  Config
	srv  *httptest.Server
	jobs routers.Router
	auth routers.Router

	mu         sync.Mutex
	tokens     map[string]time.Time
	issued     int
	rejected   int
	records    []Request
	byID       map[string]*Job
	order      []string
	next       int
	faults     []fault
	violations []string
}

// New starts an emulator; it stops when the test ends.
func New(t TB, cfg *Config) *Server {
	t.Helper()
	c := Config{}
	if cfg != nil {
		c = *cfg
	}
	if c.Username == "" {
		c.Username = "horizons"
	}
	if c.Password == "" {
		c.Password = "tapistest-password"
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = 4 * time.Hour
	}
	if c.AppID == "" {
		c.AppID = "horizons-agent"
	}
	if c.AppVersion == "" {
		c.AppVersion = "1.0"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	s := &Server{t: t, cfg: c, tokens: map[string]time.Time{}, byID: map[string]*Job{}}
	s.srv = httptest.NewUnstartedServer(s)
	s.srv.Start()
	s.URL = s.srv.URL
	var err error
	if s.jobs, err = router("spec/tapis-jobs-openapi.yaml", s.URL+"/v3"); err != nil {
		t.Errorf("tapistest: %v", err)
	}
	if s.auth, err = router("spec/tapis-authenticator-openapi.yaml", s.URL); err != nil {
		t.Errorf("tapistest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Config returns the configuration with defaults filled in.
func (s *Server) Config() Config { return s.cfg }

func router(file, server string) (routers.Router, error) {
	b, err := specs.ReadFile(file)
	if err != nil {
		return nil, err
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(b)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", file, err)
	}
	// The tapipy document declares DELETE /jobs/subscribe/{uuid} beside
	// GET and POST /jobs/subscribe/{jobUuid}, paths OpenAPI calls
	// conflicting; the emulator serves no subscriptions, so the DELETE
	// goes.
	doc.Paths.Delete("/jobs/subscribe/{uuid}")
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("%s is not a valid OpenAPI document: %w", file, err)
	}
	closeSchemas(doc)
	doc.Servers = openapi3.Servers{{URL: server}}
	return gorillamux.NewRouter(doc)
}

// closeSchemas sets additionalProperties false on every object schema
// that lists properties, except schemas that are, or contain, allOf
// members (allOf validates each member against the whole object).
func closeSchemas(doc *openapi3.T) {
	inAllOf := map[*openapi3.Schema]bool{}
	seen := map[*openapi3.Schema]bool{}
	var all []*openapi3.Schema
	var walk func(r *openapi3.SchemaRef)
	walk = func(r *openapi3.SchemaRef) {
		if r == nil || r.Value == nil || seen[r.Value] {
			return
		}
		v := r.Value
		seen[v] = true
		all = append(all, v)
		for _, m := range v.AllOf {
			if m.Value != nil {
				inAllOf[m.Value] = true
			}
			walk(m)
		}
		for _, m := range v.AnyOf {
			walk(m)
		}
		for _, m := range v.OneOf {
			walk(m)
		}
		for _, p := range v.Properties {
			walk(p)
		}
		walk(v.Items)
		if v.AdditionalProperties.Schema != nil {
			walk(v.AdditionalProperties.Schema)
		}
	}
	for _, r := range doc.Components.Schemas {
		walk(r)
	}
	for _, p := range doc.Paths.Map() {
		for _, op := range p.Operations() {
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				for _, mt := range op.RequestBody.Value.Content {
					walk(mt.Schema)
				}
			}
			for _, resp := range op.Responses.Map() {
				if resp.Value == nil {
					continue
				}
				for _, mt := range resp.Value.Content {
					walk(mt.Schema)
				}
			}
		}
	}
	no := false
	for _, v := range all {
		if len(v.Properties) == 0 || len(v.AllOf) > 0 || inAllOf[v] || v.AdditionalProperties.Has != nil || v.AdditionalProperties.Schema != nil {
			continue
		}
		v.AdditionalProperties.Has = &no
	}
}

// Violations returns the spec violations seen so far.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

func (s *Server) violation(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.mu.Lock()
	s.violations = append(s.violations, msg)
	s.mu.Unlock()
	s.t.Errorf("tapistest: %s", msg)
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.records...)
}

// Count returns how many requests with method and a path starting with
// prefix the server received.
func (s *Server) Count(method, prefix string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Method == method && strings.HasPrefix(r.Path, prefix) {
			n++
		}
	}
	return n
}

// TokensIssued is how many tokens POST /v3/oauth2/tokens minted.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// Rejected is how many Jobs calls were refused with 401.
func (s *Server) Rejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected
}

// ExpireTokens makes every token minted so far invalid, as if it expired.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.tokens {
		s.tokens[k] = time.Time{}
	}
}

// IssueToken mints a token valid for ttl without a request, for clients
// configured with a fixed token.
func (s *Server) IssueToken(ttl time.Duration) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mintLocked(ttl)
}

func (s *Server) mintLocked(ttl time.Duration) string {
	b := make([]byte, 12)
	rand.Read(b)
	tok := "tapistest-jwt." + hex.EncodeToString(b)
	s.tokens[tok] = s.cfg.Now().Add(ttl)
	return tok
}

// fault is an injected failure of the next n matching Jobs requests.
type fault struct {
	method, prefix string
	n, code        int
	lose           bool // handle the request, then lose the answer
}

// FailNext makes the next n Jobs API requests fail with HTTP code (500,
// or 502/503/504 as a gateway in front of Tapis would answer; the
// gateway's answers are outside the documents and not checked). The
// request is not handled. n 0 clears the injected failures.
func (s *Server) FailNext(n, code int) { s.FailNextMatching("", "", n, code) }

// FailNextMatching is FailNext for the requests with method ("" for any)
// and a path starting with prefix.
func (s *Server) FailNextMatching(method, prefix string, n, code int) {
	s.inject(fault{method: method, prefix: prefix, n: n, code: code})
}

// LoseNextMatching makes the next n matching Jobs requests succeed and
// then answers them with HTTP code instead, as when Tapis fails after
// doing the work (or the answer is lost on the way back).
func (s *Server) LoseNextMatching(method, prefix string, n, code int) {
	s.inject(fault{method: method, prefix: prefix, n: n, code: code, lose: true})
}

func (s *Server) inject(f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.n <= 0 {
		s.faults = nil
		return
	}
	s.faults = append(s.faults, f)
}

// takeFault returns the fault that applies to r, counting it down.
func (s *Server) takeFault(r *http.Request) (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.faults {
		f := &s.faults[i]
		if f.n > 0 && (f.method == "" || f.method == r.Method) && strings.HasPrefix(r.URL.Path, f.prefix) {
			f.n--
			return *f, true
		}
	}
	return fault{}, false
}

// Jobs returns copies of the job records in submission order.
func (s *Server) Jobs() []Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Job, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, *s.byID[id])
	}
	return out
}

// SetStatus forces a job's status and condition (for mapping tests).
func (s *Server) SetStatus(uuid, status, condition string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.byID[uuid]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoJob, uuid)
	}
	s.transitionLocked(j, status)
	j.Condition = condition
	j.step = -1 // frozen: reads no longer move it
	return nil
}

// SetOutput replaces one output file of a job; nil data deletes it.
func (s *Server) SetOutput(uuid, file string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.byID[uuid]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoJob, uuid)
	}
	if data == nil {
		delete(j.Outputs, file)
	} else {
		j.Outputs[file] = data
	}
	return nil
}

var outputRE = regexp.MustCompile(`^(/v3/jobs/[^/]+/output/(?:list|download)/)(.*)$`)

// ServeHTTP checks the request against the documents, answers it, and
// checks the answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Body: body, Token: r.Header.Get("X-Tapis-Token")}
	status := s.serve(w, r, body)
	rec.Status = status
	s.mu.Lock()
	s.records = append(s.records, rec)
	s.mu.Unlock()
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, body []byte) int {
	ctx := r.Context()
	rt := s.jobs
	isAuth := strings.HasPrefix(r.URL.Path, "/v3/oauth2/")
	if isAuth {
		rt = s.auth
	}
	// Route a copy whose {outputPath} rest is one escaped segment.
	routed := r.Clone(ctx)
	rest, isOutput := "", false
	if m := outputRE.FindStringSubmatch(r.URL.EscapedPath()); m != nil {
		isOutput = true
		rest, _ = url.PathUnescape(m[2])
		routed.URL.Path = m[1] + "x"
		routed.URL.RawPath = ""
	}
	if rt == nil {
		return s.writeEnvelope(w, http.StatusInternalServerError, "error", "tapistest: no router (the document did not load)", nil)
	}
	route, params, err := rt.FindRoute(routed)
	if err != nil {
		s.violation("%s %s is not an operation of the Tapis documents: %v", r.Method, r.URL.Path, err)
		return s.writeEnvelope(w, http.StatusNotFound, "error", "no such operation", nil)
	}
	if isOutput {
		params["outputPath"] = rest
		if rest == "" {
			// The top directory: Tapis takes the empty rest, the
			// document's required string cannot; check it as "/".
			params["outputPath"] = "/"
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: func(_ context.Context, ai *openapi3filter.AuthenticationInput) error {
			if ai.SecurityScheme == nil || ai.SecurityScheme.In != "header" {
				return nil
			}
			if r.Header.Get(ai.SecurityScheme.Name) == "" {
				return fmt.Errorf("header %s is missing", ai.SecurityScheme.Name)
			}
			return nil
		}}}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		s.violation("request %s %s violates the document (operation %s): %v", r.Method, r.URL.Path, route.Operation.OperationID, err)
		return s.writeEnvelope(w, http.StatusBadRequest, "error", "request rejected by the OpenAPI document: "+err.Error(), nil)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))

	var lost *fault
	if !isAuth {
		f, fail := s.takeFault(r)
		code := f.code
		if fail && f.lose {
			lost, fail = &f, false
		}
		if fail {
			if code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(code)
				fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>", code, http.StatusText(code))
				return code
			}
			rec := httptest.NewRecorder()
			s.writeError(rec, route.Operation.OperationID, code, "TAPIS_JOBS_INTERNAL_ERROR injected failure")
			return s.checkAndCopy(ctx, w, in, rec, isAuth, route)
		}
	}

	rec := httptest.NewRecorder()
	if isAuth {
		s.handleAuth(rec, route.Operation.OperationID, body)
	} else {
		s.handleJobs(rec, r, route.Operation.OperationID, params)
	}
	if lost != nil {
		rec = httptest.NewRecorder()
		s.writeError(rec, route.Operation.OperationID, lost.code, "TAPIS_JOBS_INTERNAL_ERROR the request was handled but its answer failed (injected)")
	}
	return s.checkAndCopy(ctx, w, in, rec, isAuth, route)
}

func (s *Server) checkAndCopy(ctx context.Context, w http.ResponseWriter, in *openapi3filter.RequestValidationInput, rec *httptest.ResponseRecorder, isAuth bool, route *routers.Route) int {
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
		Body: io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
		// The Authenticator documents only its 201; the Jobs API documents
		// every status it sends.
		Options: &openapi3filter.Options{MultiError: true, IncludeResponseStatus: !isAuth}}
	if route.Operation.OperationID == "getJobOutputDownload" && rec.Code != http.StatusOK {
		// The document declares the error envelopes of a download as
		// application/octet-stream with an object schema, which no octet
		// stream decodes to: check the JSON body against that schema.
		if err := checkOctetEnvelope(route, rec); err != nil {
			s.violation("the emulator's %d answer to %s (%s) violates the document: %v", rec.Code, in.Request.URL.Path, route.Operation.OperationID, err)
		}
	} else if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		s.violation("the emulator's %d answer to %s (%s) violates the document: %v", rec.Code, in.Request.URL.Path, route.Operation.OperationID, err)
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
	return rec.Code
}

func checkOctetEnvelope(route *routers.Route, rec *httptest.ResponseRecorder) error {
	ref := route.Operation.Responses.Status(rec.Code)
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("status %d is not documented", rec.Code)
	}
	mt := ref.Value.Content.Get("application/octet-stream")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		return fmt.Errorf("status %d has no application/octet-stream schema", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/octet-stream" {
		return fmt.Errorf("Content-Type %q, want application/octet-stream", ct)
	}
	var v any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		return err
	}
	return mt.Schema.Value.VisitJSON(v, openapi3.MultiErrors())
}

func (s *Server) writeEnvelope(w http.ResponseWriter, code int, status, msg string, result any) int {
	env := map[string]any{"status": status, "message": msg, "version": "1.8.0", "commit": "tapistest", "build": "tapistest", "metadata": map[string]any{}}
	if result != nil {
		env["result"] = result
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(env)
	return code
}

func (s *Server) handleAuth(w http.ResponseWriter, op string, body []byte) {
	if op != "create_token" {
		s.writeEnvelope(w, http.StatusNotImplemented, "error", "tapistest does not emulate "+op, nil)
		return
	}
	var req map[string]string
	if err := json.Unmarshal(body, &req); err != nil {
		vals, _ := url.ParseQuery(string(body))
		req = map[string]string{}
		for k := range vals {
			req[k] = vals.Get(k)
		}
	}
	if req["grant_type"] != "password" {
		s.writeEnvelope(w, http.StatusBadRequest, "error", fmt.Sprintf("Invalid grant_type: %q; tapistest supports password", req["grant_type"]), nil)
		return
	}
	if req["username"] != s.cfg.Username || req["password"] != s.cfg.Password {
		s.writeEnvelope(w, http.StatusUnauthorized, "error", "Invalid username/password combination.", nil)
		return
	}
	s.mu.Lock()
	tok := s.mintLocked(s.cfg.TokenTTL)
	s.issued++
	exp := s.tokens[tok]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	s.writeEnvelope(w, http.StatusCreated, "success", "Token created successfully.", map[string]any{
		"access_token": map[string]any{"access_token": tok, "expires_at": exp.UTC().Format(time.RFC3339),
			"expires_in": int(s.cfg.TokenTTL / time.Second), "jti": tok[len(tok)-8:]},
	})
}

// stages is the default lifecycle.
var stages = []string{"PENDING", "PROCESSING_INPUTS", "STAGING_INPUTS", "STAGING_JOB", "SUBMITTING_JOB", "QUEUED", "RUNNING", "ARCHIVING", "FINISHED"}

func (s *Server) handleJobs(w http.ResponseWriter, r *http.Request, op string, params map[string]string) {
	s.mu.Lock()
	exp, ok := s.tokens[r.Header.Get("X-Tapis-Token")]
	now := s.cfg.Now()
	if !ok || !now.Before(exp) {
		s.rejected++
		s.mu.Unlock()
		msg := "TAPIS_SECURITY_JWT_INVALID The Tapis JWT is not valid."
		if ok {
			msg = "TAPIS_SECURITY_JWT_EXPIRED The Tapis JWT has expired."
		}
		s.writeEnvelope(w, http.StatusUnauthorized, "error", msg, nil)
		return
	}
	defer s.mu.Unlock()
	var j *Job
	if id, has := params["jobUuid"]; has {
		if j = s.byID[id]; j == nil {
			s.writeEnvelope(w, http.StatusNotFound, "error", fmt.Sprintf("JOBS_JOB_NOT_FOUND Job %s not found.", id), map[string]any{"name": id})
			return
		}
	}
	switch op {
	case "submitJob":
		s.submitLocked(w, r)
	case "getJob":
		s.advanceLocked(j)
		s.writeEnvelope(w, http.StatusOK, "success", "JOBS_RETRIEVED Job "+j.UUID+" retrieved.", s.recordLocked(j))
	case "getJobStatus":
		s.advanceLocked(j)
		st := map[string]any{"status": j.Status}
		if j.Condition != "" {
			st["condition"] = j.Condition
		}
		s.writeEnvelope(w, http.StatusOK, "success", "JOBS_STATUS_RETRIEVED", st)
	case "getJobHistory":
		q := r.URL.Query()
		skip, _ := strconv.Atoi(q.Get("skip"))
		limit, _ := strconv.Atoi(q.Get("limit"))
		var out []any
		for i, h := range j.history {
			if i < skip || (limit > 0 && len(out) >= limit) {
				continue
			}
			out = append(out, map[string]any{"event": "JOB_NEW_STATUS", "created": h.at.UTC().Format(time.RFC3339Nano),
				"eventDetail": h.status, "description": "The job has transitioned to a new status: " + h.status + "."})
		}
		if out == nil {
			out = []any{}
		}
		s.writeEnvelope(w, http.StatusOK, "success", "JOBS_HISTORY_RETRIEVED", out)
	case "cancelJob":
		if terminal(j.Status) {
			s.writeEnvelope(w, http.StatusConflict, "error", fmt.Sprintf("JOBS_CANCEL_TERMINAL Job %s is already in terminal state %s.", j.UUID, j.Status), map[string]any{"name": j.UUID})
			return
		}
		s.transitionLocked(j, "CANCELLED")
		j.Condition = "CANCELLED_BY_USER"
		j.LastMessage = "Job cancelled by user " + s.cfg.Username
		s.writeEnvelope(w, http.StatusOK, "success", "JOBS_CANCELLED", map[string]any{"message": "Request to cancel job " + j.UUID + " accepted."})
	case "getJobList":
		q := r.URL.Query()
		skip, _ := strconv.Atoi(q.Get("skip"))
		limit, _ := strconv.Atoi(q.Get("limit"))
		out := []any{}
		for i := len(s.order) - 1; i >= 0; i-- { // newest first
			if n := len(s.order) - 1 - i; n < skip || (limit > 0 && len(out) >= limit) {
				continue
			}
			j := s.byID[s.order[i]]
			item := map[string]any{"uuid": j.UUID, "name": j.Name, "owner": s.cfg.Username, "appId": s.cfg.AppID, "appVersion": s.cfg.AppVersion,
				"status": j.Status, "created": j.Created.UTC().Format(time.RFC3339Nano), "tenant": "tapistest"}
			if j.Condition != "" {
				item["condition"] = j.Condition
			}
			if !j.Started.IsZero() {
				item["remoteStarted"] = j.Started.UTC().Format(time.RFC3339Nano)
			}
			out = append(out, item)
		}
		s.writeEnvelope(w, http.StatusOK, "success", "JOBS_LIST_RETRIEVED", out)
	case "getJobOutputList", "getJobOutputDownload":
		if !terminal(j.Status) && r.URL.Query().Get("allowIfRunning") != "true" {
			s.writeOutputError(w, op, http.StatusBadRequest, fmt.Sprintf("JOBS_OUTPUT_NOT_READY Job %s is in state %s; outputs are available once it ends.", j.UUID, j.Status))
			return
		}
		p := strings.Trim(params["outputPath"], "/")
		if op == "getJobOutputDownload" {
			b, ok := j.Outputs[p]
			if !ok {
				s.writeOutputError(w, op, http.StatusNotFound, fmt.Sprintf("FILES_NOT_FOUND %s not found in the output of job %s", p, j.UUID))
				return
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.WriteHeader(http.StatusOK)
			w.Write(b)
			return
		}
		names := make([]string, 0, len(j.Outputs))
		for n := range j.Outputs {
			if p == "" || strings.HasPrefix(n, p+"/") {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		out := []any{}
		for _, n := range names {
			base := n[strings.LastIndex(n, "/")+1:]
			out = append(out, map[string]any{"name": base, "path": n, "type": "file", "mimeType": mime(n), "size": len(j.Outputs[n]),
				"lastModified": j.Ended.UTC().Format(time.RFC3339), "owner": s.cfg.Username, "group": "G-horizons", "nativePermissions": "rw-r--r--",
				"url": "tapis://tapistest-exec/scratch/" + j.UUID + "/" + n})
		}
		s.writeEnvelope(w, http.StatusOK, "success", "JOBS_OUTPUT_LISTED", out)
	default:
		s.writeEnvelope(w, http.StatusNotImplemented, "error", "tapistest does not emulate "+op, nil)
	}
}

// writeError answers operation op with an error envelope in the content
// type the document declares for it.
func (s *Server) writeError(w http.ResponseWriter, op string, code int, msg string) {
	if op == "getJobOutputDownload" || op == "getJobOutputList" {
		s.writeOutputError(w, op, code, msg)
		return
	}
	s.writeEnvelope(w, code, "error", msg, nil)
}

// writeOutputError answers an output call with an error envelope. The
// document declares these answers as application/octet-stream.
func (s *Server) writeOutputError(w http.ResponseWriter, op string, code int, msg string) {
	if op == "getJobOutputList" {
		if code == http.StatusNotFound {
			s.writeEnvelope(w, code, "error", msg, map[string]any{"name": "output"})
			return
		}
		s.writeEnvelope(w, code, "error", msg, nil)
		return
	}
	b, _ := json.Marshal(map[string]any{"status": "error", "message": msg, "version": "1.8.0", "commit": "tapistest", "build": "tapistest", "metadata": map[string]any{}})
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(code)
	w.Write(b)
}

func mime(n string) string {
	switch {
	case strings.HasSuffix(n, ".json"):
		return "application/json"
	case strings.HasSuffix(n, ".fits"):
		return "image/fits"
	}
	return "text/plain"
}

func terminal(status string) bool {
	return status == "FINISHED" || status == "FAILED" || status == "CANCELLED"
}

func (s *Server) submitLocked(w http.ResponseWriter, r *http.Request) {
	var req map[string]any
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		s.writeEnvelope(w, http.StatusBadRequest, "error", "JOBS_SUBMIT_BAD_JSON "+err.Error(), nil)
		return
	}
	if req["appId"] != s.cfg.AppID || req["appVersion"] != s.cfg.AppVersion {
		s.writeEnvelope(w, http.StatusBadRequest, "error", fmt.Sprintf("APPLIB_NOT_FOUND App %v version %v not found or not available to user %s.", req["appId"], req["appVersion"], s.cfg.Username), nil)
		return
	}
	env := map[string]string{}
	if ps, ok := req["parameterSet"].(map[string]any); ok {
		if vars, ok := ps["envVariables"].([]any); ok {
			for _, v := range vars {
				kv, _ := v.(map[string]any)
				k, _ := kv["key"].(string)
				val, _ := kv["value"].(string)
				env[k] = val
			}
		}
	}
	var task struct {
		ID    string `json:"id"`
		Agent string `json:"agent"`
	}
	if err := json.Unmarshal([]byte(env["HORIZONS_TASK"]), &task); err != nil {
		s.writeEnvelope(w, http.StatusBadRequest, "error", "JOBS_SUBMIT_ENV the horizons-agent app needs HORIZONS_TASK: "+err.Error(), nil)
		return
	}
	s.next++
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	id := fmt.Sprintf("%s-%s-%s-%s-%s-007", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
	name, _ := req["name"].(string)
	j := &Job{UUID: id, Name: name, Agent: task.Agent, TaskID: task.ID, ResultFile: env["HORIZONS_RESULT_FILE"],
		Submit: req, Created: s.cfg.Now(), Outputs: map[string][]byte{}, num: s.next}
	s.transitionLocked(j, "PENDING")
	s.byID[id] = j
	s.order = append(s.order, id)
	s.writeEnvelope(w, http.StatusOK, "success", "JOBS_CREATED Job "+id+" created.", s.recordLocked(j))
}

func (s *Server) transitionLocked(j *Job, status string) {
	now := s.cfg.Now()
	j.Status = status
	j.history = append(j.history, history{at: now, status: status})
	if status == "RUNNING" && j.Started.IsZero() {
		j.Started = now
	}
	if terminal(status) {
		j.Ended = now
	}
}

// progressFile is the runner's progress file beside its result file.
func progressFile(result string) string {
	stem := strings.TrimSuffix(result, ".result.json")
	if stem == result {
		stem = strings.TrimSuffix(result, path.Ext(result))
	}
	return stem + ".progress.json"
}

// advanceLocked moves j one stage along its script. While it runs, the
// emulated runner reports 20 % more progress on every read (at most 90 %).
func (s *Server) advanceLocked(j *Job) {
	if j.step < 0 || terminal(j.Status) {
		return
	}
	if j.Status == "RUNNING" && j.ResultFile != "" {
		j.runs++
		j.Outputs[progressFile(j.ResultFile)] = fmt.Appendf(nil, `{"percent":%d,"note":"batch %d"}`, min(20*j.runs, 90), j.runs)
	}
	switch {
	case j.Status == "RUNNING" && j.Agent == AgentWait:
		return
	case j.Status == "RUNNING" && j.Agent == AgentFail:
		s.transitionLocked(j, "FAILED")
		j.Condition, j.LastMessage = "JOB_REMOTE_OUTCOME_ERROR", "The application exited with code 1."
		j.Outputs["tapisjob.out"] = []byte("agent " + j.Agent + " failed: exit 1\n")
		if j.ResultFile != "" {
			j.Outputs[j.ResultFile] = []byte(`{"error":"agent fails: synthetic failure on purpose"}`)
		}
		return
	case j.Status == "RUNNING" && j.Agent == AgentTimeout:
		s.transitionLocked(j, "FAILED")
		j.Condition, j.LastMessage = "SCHEDULER_TIMEOUT", "The scheduler killed the job at its time limit."
		return
	case j.Status == "RUNNING" && j.Agent == AgentBlock && !j.BlockedOnce():
		s.transitionLocked(j, "BLOCKED")
		j.LastMessage = "Job blocked: the execution system is over its job quota."
		return
	case j.Status == "BLOCKED":
		s.transitionLocked(j, "RUNNING")
		j.LastMessage = ""
		return
	}
	j.step++
	if j.step >= len(stages) {
		return
	}
	s.transitionLocked(j, stages[j.step])
	if j.Status == "FINISHED" {
		j.Condition = "NORMAL_COMPLETION"
		j.LastMessage = "Job completed normally."
		res, _ := json.Marshal(map[string]any{"agent": j.Agent, "task_id": j.TaskID, "tapis_job": j.UUID, "summary": "ran " + j.Agent + " on Tapis"})
		if j.ResultFile != "" {
			j.Outputs[j.ResultFile] = res
		}
		j.Outputs["tapisjob.out"] = []byte("horizons-agent run: task " + j.TaskID + " done\n")
	}
}

// BlockedOnce reports whether the job has been BLOCKED before.
func (j *Job) BlockedOnce() bool {
	for _, h := range j.history {
		if h.status == "BLOCKED" {
			return true
		}
	}
	return false
}

// recordLocked is the Job object of the Jobs document for j.
func (s *Server) recordLocked(j *Job) map[string]any {
	ps, _ := json.Marshal(j.Submit["parameterSet"])
	rec := map[string]any{
		"id": 1000 + j.num, "uuid": j.UUID, "name": j.Name, "owner": s.cfg.Username, "tenant": "tapistest",
		"status": j.Status, "created": j.Created.UTC().Format(time.RFC3339Nano), "lastUpdated": s.cfg.Now().UTC().Format(time.RFC3339Nano),
		"appId": s.cfg.AppID, "appVersion": s.cfg.AppVersion, "execSystemId": "tapistest-exec", "archiveSystemId": "tapistest-exec",
		"execSystemExecDir": "/scratch/" + j.UUID, "execSystemOutputDir": "/scratch/" + j.UUID + "/output",
		"nodeCount": 1, "coresPerNode": 1, "memoryMB": intOf(j.Submit["memoryMB"], 100), "maxMinutes": intOf(j.Submit["maxMinutes"], 10),
		"parameterSet": string(ps), "fileInputs": "[]", "execSystemConstraints": "[]", "subscriptions": "[]",
		"tags": j.Submit["tags"], "jobType": "BATCH", "visible": true, "createdby": s.cfg.Username, "createdbyTenant": "tapistest",
		"blockedCount": 0, "remoteSubmitRetries": 0, "remoteChecksSuccess": 0, "remoteChecksFailed": 0, "mpi": false,
	}
	if rec["tags"] == nil {
		rec["tags"] = []any{}
	}
	if j.Condition != "" {
		rec["condition"] = j.Condition
	}
	if j.LastMessage != "" {
		rec["lastMessage"] = j.LastMessage
	}
	if n, _ := j.Submit["notes"]; n != nil {
		b, _ := json.Marshal(n)
		rec["notes"] = string(b)
	}
	if j.BlockedOnce() {
		rec["blockedCount"] = 1
	}
	if !j.Started.IsZero() {
		rec["remoteJobId"] = strconv.Itoa(4000 + j.num)
		rec["remoteStarted"] = j.Started.UTC().Format(time.RFC3339Nano)
		rec["remoteSubmitted"] = j.Started.UTC().Format(time.RFC3339Nano)
	}
	if terminal(j.Status) {
		rec["ended"] = j.Ended.UTC().Format(time.RFC3339Nano)
		if !j.Started.IsZero() {
			rec["remoteEnded"] = j.Ended.UTC().Format(time.RFC3339Nano)
			switch j.Status {
			case "FINISHED":
				rec["remoteOutcome"] = "FINISHED"
			case "FAILED":
				rec["remoteOutcome"] = "FAILED"
			}
		}
	}
	return rec
}

func intOf(v any, def int) int {
	if f, ok := v.(float64); ok {
		return int(f)
	}
	return def
}

// ErrNoJob is returned by helpers for an unknown job uuid.
var ErrNoJob = errors.New("tapistest: no such job")
