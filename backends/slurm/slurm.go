package slurm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
)

// Defaults used when a Config field is zero.
const (
	DefaultName        = "slurm"
	DefaultAPIVersion  = "v0.0.38"
	DefaultCommand     = "horizons-agent run"
	DefaultJobPrefix   = "horizons-"
	DefaultMaxWallTime = 48 * time.Hour
	DefaultRetryMax    = 3
	DefaultCallTimeout = 30 * time.Second
)

// Config configures the Slurm backend.
type Config struct {
	// Name is the backend name stored in handles; default "slurm".
	Name string
	// URL is slurmrestd's base URL, e.g. http://127.0.0.1:6820. Required.
	URL string
	// APIVersion is the OpenAPI plugin version: "v0.0.38" (the default),
	// "v0.0.41", or "auto" to read /openapi/v3 on first use and take the
	// newest of those the server offers.
	APIVersion string
	// UserName is sent as X-SLURM-USER-NAME. Required.
	UserName string
	// Token is the JWT sent as X-SLURM-USER-TOKEN. Required unless
	// TokenFunc is set. Never logged.
	Token string
	// TokenFunc, when set, is called before every request for the current
	// token (the refresh hook); it overrides Token.
	TokenFunc func(ctx context.Context) (string, error)
	// Partition is the partition jobs go to; empty means the cluster's
	// default partition.
	Partition string
	// WorkDir is the job's working directory on the cluster. Required.
	WorkDir string
	// Command is the agent runner the batch script executes, a binary
	// path (on the cluster) and its subcommand; default "horizons-agent
	// run" found through PATH. The script appends --result
	// WorkDir/horizons-<job id>.result.json. It is inserted into the
	// script as given (shell words), so quote a path with spaces.
	Command string
	// NoDuplicateCheck skips the look-up (GET /jobs) Submit does before
	// submitting, which makes a second Submit of the same task id return
	// the first job instead of starting another. Set it only when listing
	// the cluster's jobs is too costly and the caller never resubmits a
	// task id.
	NoDuplicateCheck bool
	// JobPrefix starts the name of every job this backend submits (the
	// task id follows); Capacity counts only jobs whose name starts with
	// it. Default "horizons-". Give each deployment sharing a cluster
	// account its own prefix.
	JobPrefix string
	// Env is extra environment for every job; PATH defaults to
	// /usr/local/bin:/usr/bin:/bin. Values are never logged.
	Env map[string]string
	// MaxGPUs, MaxMemoryMB and MaxWallTime are what one task may ask for
	// (the partition's limits); MaxWallTime defaults to 48 h, the others
	// to 0 (no GPUs; no memory limit).
	MaxGPUs     int
	MaxMemoryMB int
	MaxWallTime time.Duration
	// TotalGPUs is what Capacity reports as the cluster's GPUs; default
	// MaxGPUs.
	TotalGPUs int
	// Agents are the agents the runner on the cluster can run (listed in
	// Capabilities.Agents); default the three built-in agents.
	Agents []string
	// HTTPClient is the underlying client; nil means a pooled default.
	HTTPClient *http.Client
	// RetryMax is how many times a retryable call is retried; default 3.
	// A negative value disables retries.
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the backoff; default 100 ms and
	// 2 s.
	RetryWaitMin, RetryWaitMax time.Duration
	// CallTimeout bounds one call including retries; default 30 s.
	CallTimeout time.Duration
	// Logger receives one line per retry and per submit; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Driver talks to slurmrestd. It implements backends.Driver and is safe for
// concurrent use.
type Driver struct {
	cfg  Config
	base string
	ver  string // resolved API version; "" until detected
	http *retryablehttp.Client
	once *retryablehttp.Client // no retries, for POST
	log  *slog.Logger

	mu     sync.Mutex
	closed bool
	gpus   map[string]int // job id -> GPUs, for Capacity
}

// New checks cfg and returns a driver. It does not contact the server; call
// Ping to check the URL and credentials at start-up.
func New(cfg *Config) (*Driver, error) {
	if cfg == nil {
		return nil, errors.New("slurm: config is nil; URL, UserName, Token and WorkDir are required")
	}
	c := *cfg
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.APIVersion == "" {
		c.APIVersion = DefaultAPIVersion
	}
	if c.APIVersion != "v0.0.38" && c.APIVersion != "v0.0.41" && c.APIVersion != "auto" {
		return nil, fmt.Errorf("slurm: config field APIVersion is %q; supported: v0.0.38 (Slurm 22.05), v0.0.41 (Slurm 24.05) or auto", c.APIVersion)
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("slurm: config field URL is %q, want http(s)://host:port of slurmrestd", c.URL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("slurm: config field URL must not carry credentials; use UserName and Token")
	}
	if c.UserName == "" {
		return nil, errors.New("slurm: config field UserName is empty (sent as X-SLURM-USER-NAME)")
	}
	if c.Token == "" && c.TokenFunc == nil {
		return nil, errors.New("slurm: config field Token is empty and TokenFunc is nil; mint one with `scontrol token`")
	}
	if c.WorkDir == "" || !path.IsAbs(c.WorkDir) {
		return nil, fmt.Errorf("slurm: config field WorkDir is %q, want an absolute path on the cluster", c.WorkDir)
	}
	if c.MaxGPUs < 0 || c.MaxMemoryMB < 0 || c.MaxWallTime < 0 || c.TotalGPUs < 0 {
		return nil, fmt.Errorf("slurm: config limits must be >= 0 (MaxGPUs %d, MaxMemoryMB %d, MaxWallTime %s, TotalGPUs %d)", c.MaxGPUs, c.MaxMemoryMB, c.MaxWallTime, c.TotalGPUs)
	}
	if len(c.Agents) == 0 {
		c.Agents = []string{agents.NameAlphaCal, agents.NameImageReconstruction, agents.NameAnomalyDetection}
	}
	if c.Command == "" {
		c.Command = DefaultCommand
	}
	if c.JobPrefix == "" {
		c.JobPrefix = DefaultJobPrefix
	}
	if strings.ContainsAny(c.JobPrefix, " \t\n\"'") {
		return nil, fmt.Errorf("slurm: config field JobPrefix is %q, want no white space or quotes", c.JobPrefix)
	}
	if c.MaxWallTime == 0 {
		c.MaxWallTime = DefaultMaxWallTime
	}
	if c.TotalGPUs == 0 {
		c.TotalGPUs = c.MaxGPUs
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.RetryMax < 0 {
		c.RetryMax = 0
	}
	if c.RetryWaitMin <= 0 {
		c.RetryWaitMin = 100 * time.Millisecond
	}
	if c.RetryWaitMax <= 0 {
		c.RetryWaitMax = 2 * time.Second
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("backend", c.Name)
	rc := retryablehttp.NewClient()
	if c.HTTPClient != nil {
		rc.HTTPClient = c.HTTPClient
	}
	rc.RetryMax, rc.RetryWaitMin, rc.RetryWaitMax = c.RetryMax, c.RetryWaitMin, c.RetryWaitMax
	rc.CheckRetry = checkRetry
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	rc.Logger = nil
	rc.RequestLogHook = func(_ retryablehttp.Logger, r *http.Request, attempt int) {
		if attempt > 0 {
			log.Warn("slurmrestd retry", "method", r.Method, "path", r.URL.Path, "attempt", attempt)
		}
	}
	once := retryablehttp.NewClient()
	once.HTTPClient, once.RetryMax, once.Logger = rc.HTTPClient, 0, nil
	once.CheckRetry, once.ErrorHandler = checkRetry, retryablehttp.PassthroughErrorHandler
	return &Driver{
		once: once,
		cfg:  c,
		base: strings.TrimRight(c.URL, "/"),
		ver:  strings.TrimPrefix(c.APIVersion, "auto"),
		http: rc,
		log:  log,
		gpus: map[string]int{},
	}, nil
}

// Open returns the driver wrapped in the portable type.
func Open(cfg *Config, opts *backends.Options) (*backends.Backend, error) {
	d, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return backends.New(d, opts), nil
}

// checkRetry retries connection errors, 502, 503, 504 and a 500 whose
// body says slurmctld cannot be reached; never a 4xx or another 5xx.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	if resp.StatusCode != http.StatusInternalServerError {
		return retryStatus(resp.StatusCode, nil), nil
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return true, nil
	}
	return retryStatus(resp.StatusCode, body), nil
}

// retryStatus reports whether an answer is worth repeating: 502, 503,
// 504, and the 500 slurmrestd gives while slurmctld cannot be reached.
// Other 5xx (an unknown job, a bad partition) and every 4xx are final.
func retryStatus(code int, body []byte) bool {
	switch code {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	case http.StatusInternalServerError:
		return bytes.Contains(body, []byte("unable to load"))
	}
	return false
}

// transient marks an error a retry may cure (a connection error or a
// retryable status); it unwraps to the mapped sentinel.
type transient struct{ error }

func (e transient) Unwrap() error { return e.error }

// Name returns the backend name.
func (d *Driver) Name() string { return d.cfg.Name }

// Capabilities reports the configured limits. Cancel and Recover are
// supported.
func (d *Driver) Capabilities(ctx context.Context) (backends.Capabilities, error) {
	if err := d.check(ctx); err != nil {
		return backends.Capabilities{}, err
	}
	return backends.Capabilities{
		MaxGPUs: d.cfg.MaxGPUs, MaxMemoryMB: d.cfg.MaxMemoryMB, MaxWallTime: d.cfg.MaxWallTime,
		Cancel: true, Recover: true, Agents: append([]string(nil), d.cfg.Agents...),
	}, nil
}

func (d *Driver) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("%w: %s", backends.ErrClosed, d.cfg.Name)
	}
	return nil
}

// apiError is one entry of slurmrestd's errors array. The number comes as
// error_number, error_code or errno depending on the call.
type apiError struct {
	Error       string `json:"error"`
	Description string `json:"description"`
	Source      string `json:"source"`
	ErrorNumber *int   `json:"error_number"`
	ErrorCode   *int   `json:"error_code"`
	Errno       *int   `json:"errno"`
}

func (e apiError) number() int {
	for _, p := range []*int{e.ErrorNumber, e.ErrorCode, e.Errno} {
		if p != nil {
			return *p
		}
	}
	return 0
}

func (e apiError) String() string {
	s := e.Error
	if e.Description != "" && e.Description != e.Error {
		s += ": " + e.Description
	}
	if n := e.number(); n != 0 {
		s += fmt.Sprintf(" (error %d)", n)
	}
	return s
}

type envelope struct {
	Errors []apiError `json:"errors"`
}

// Slurm error numbers this client maps.
const (
	errInvalidPartition = 2000
	errAccessDenied     = 2002
	errInvalidJobID     = 2017
	errZeroBytes        = 5005
)

// call does one request and decodes a 2xx JSON answer into out. Errors are
// mapped onto the backends sentinels.
func (d *Driver) call(ctx context.Context, method, p string, body, out any) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
	defer cancel()
	var raw any
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("slurm: encode %s %s: %w", method, p, err)
		}
		raw = b
	}
	full := d.base + p
	if !strings.HasPrefix(p, "/openapi") {
		ver, err := d.version(ctx)
		if err != nil {
			return err
		}
		full = d.base + "/slurm/" + ver + p
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, full, raw)
	if err != nil {
		return fmt.Errorf("slurm: %s %s: %w", method, p, err)
	}
	token := d.cfg.Token
	if d.cfg.TokenFunc != nil {
		if token, err = d.cfg.TokenFunc(ctx); err != nil {
			return fmt.Errorf("%w: slurm token refresh failed: %v", backends.ErrUnauthorized, err)
		}
	}
	req.Header.Set("X-SLURM-USER-NAME", d.cfg.UserName)
	req.Header.Set("X-SLURM-USER-TOKEN", token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := d.http
	if method == http.MethodPost {
		// A POST is not idempotent: Submit retries it itself, after
		// checking that the failed attempt did not create the job.
		client = d.once
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: slurmrestd %s %s: %v", backends.ErrUnavailable, method, p, ctx.Err())
		}
		return transient{fmt.Errorf("%w: slurmrestd at %s: %v; check the URL and that slurmrestd runs there", backends.ErrUnavailable, d.cfg.URL, redact(err, token))}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%w: read slurmrestd answer to %s %s: %v", backends.ErrUnavailable, method, p, err)
	}
	var env envelope
	jsonErr := json.Unmarshal(data, &env)
	if resp.StatusCode/100 == 2 && len(env.Errors) == 0 {
		if jsonErr != nil {
			return fmt.Errorf("%w: slurmrestd %s %s answered %d with a body that is not JSON: %.80q", backends.ErrUnavailable, method, p, resp.StatusCode, data)
		}
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("slurm: decode %s %s: %w", method, p, err)
			}
		}
		return nil
	}
	err = d.mapError(method, p, resp.StatusCode, env.Errors, data)
	if retryStatus(resp.StatusCode, data) {
		return transient{err}
	}
	return err
}

func redact(err error, token string) string {
	s := err.Error()
	if token != "" {
		s = strings.ReplaceAll(s, token, "[token]")
	}
	return s
}

func (d *Driver) mapError(method, p string, status int, errs []apiError, body []byte) error {
	var msgs []string
	num := 0
	for _, e := range errs {
		msgs = append(msgs, e.String())
		if num == 0 {
			num = e.number()
		}
	}
	msg := strings.Join(msgs, "; ")
	if msg == "" {
		msg = strings.TrimSpace(string(body))
		if len(msg) > 200 {
			msg = msg[:200]
		}
	}
	where := fmt.Sprintf("slurmrestd %s %s: HTTP %d: %s", method, p, status, msg)
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return fmt.Errorf("%w: %s; check UserName (X-SLURM-USER-NAME) and the token, and that slurmrestd runs with rest_auth/jwt", backends.ErrUnauthorized, where)
	case num == errInvalidJobID:
		return fmt.Errorf("%w: %s; the job never existed or slurmctld purged it (MinJobAge after it ended)", backends.ErrTaskNotFound, where)
	case num == errInvalidPartition:
		return fmt.Errorf("%w: field partition is %q: %s", backends.ErrInvalidTask, d.cfg.Partition, where)
	case num == errAccessDenied:
		return fmt.Errorf("%w: %s; the job belongs to another user", backends.ErrUnauthorized, where)
	case num == errZeroBytes:
		return fmt.Errorf("%w: %s; slurmctld rejected the request, most often an expired or forged token: mint a new one with `scontrol token`", backends.ErrUnauthorized, where)
	case strings.Contains(msg, "unable to load"):
		return fmt.Errorf("%w: %s; slurmctld is down or rejected the token: if `scontrol ping` says UP, the token is expired or not for user %q, so mint one with `scontrol token username=%s`", backends.ErrUnavailable, where, d.cfg.UserName, d.cfg.UserName)
	case status == http.StatusBadRequest:
		return fmt.Errorf("%w: %s", backends.ErrInvalidTask, where)
	case status >= 500 || status == 0:
		return fmt.Errorf("%w: %s", backends.ErrUnavailable, where)
	}
	return fmt.Errorf("slurm: %s", where)
}

// Ping checks that slurmrestd answers and accepts the credentials.
func (d *Driver) Ping(ctx context.Context) error {
	var out struct {
		Pings []struct {
			Hostname string `json:"hostname"`
			Ping     string `json:"ping"`
		} `json:"pings"`
	}
	if _, err := d.version(ctx); err != nil {
		return err
	}
	if err := d.call(ctx, http.MethodGet, d.listPath("/ping"), nil, &out); err != nil {
		return err
	}
	for _, p := range out.Pings {
		if p.Ping == "UP" {
			return nil
		}
	}
	return fmt.Errorf("%w: slurmrestd answers but no slurmctld is UP (%+v)", backends.ErrUnavailable, out.Pings)
}

// jobSubmission is the v0.0.38 POST /job/submit body.
type jobSubmission struct {
	Script string        `json:"script"`
	Job    jobProperties `json:"job"`
}

type jobProperties struct {
	Name                    string            `json:"name"`
	Partition               string            `json:"partition,omitempty"`
	CurrentWorkingDirectory string            `json:"current_working_directory"`
	StandardOutput          string            `json:"standard_output"`
	StandardError           string            `json:"standard_error"`
	Environment             map[string]string `json:"environment"`
	TimeLimit               int               `json:"time_limit,omitempty"`
	MemoryPerNode           int               `json:"memory_per_node,omitempty"`
	Gres                    string            `json:"gres,omitempty"`
	Comment                 string            `json:"comment,omitempty"`
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// BatchScript returns the script and job properties Submit sends for t.
// It is exported for inspection and tests.
func (d *Driver) BatchScript(t backends.Task) (script string, job json.RawMessage, err error) {
	s, err := d.submission(t)
	if err != nil {
		return "", nil, err
	}
	b, err := json.Marshal(d.body(s)["job"])
	return s.Script, b, err
}

// listPath adds the trailing slash v0.0.41 declares for collection paths.
func (d *Driver) listPath(p string) string {
	if d.current() == "v0.0.38" {
		return p
	}
	return p + "/"
}

// body shapes a submission for the configured API version: v0.0.38 has
// the script beside the job and the environment as an object; v0.0.41
// has the script inside the job, the environment as a list of K=V, numbers
// as {set, number} structs and GPUs as tres_per_node.
func (d *Driver) body(s jobSubmission) map[string]any {
	if d.current() != "v0.0.41" {
		return map[string]any{"script": s.Script, "job": s.Job}
	}
	j := s.Job
	env := make([]string, 0, len(j.Environment))
	for k, v := range j.Environment {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	job := map[string]any{
		"script":                    s.Script,
		"name":                      j.Name,
		"current_working_directory": j.CurrentWorkingDirectory,
		"standard_output":           j.StandardOutput,
		"standard_error":            j.StandardError,
		"environment":               env,
		"time_limit":                map[string]any{"set": true, "infinite": false, "number": j.TimeLimit},
		"comment":                   j.Comment,
	}
	if j.Partition != "" {
		job["partition"] = j.Partition
	}
	if j.MemoryPerNode > 0 {
		job["memory_per_node"] = map[string]any{"set": true, "infinite": false, "number": j.MemoryPerNode}
	}
	if j.Gres != "" {
		job["tres_per_node"] = "gres/" + j.Gres
	}
	return map[string]any{"job": job}
}

func (d *Driver) submission(t backends.Task) (jobSubmission, error) {
	env := map[string]string{"PATH": "/usr/local/bin:/usr/bin:/bin"}
	for k, v := range d.cfg.Env {
		env[k] = v
	}
	for k, v := range t.Env {
		if !envName.MatchString(k) {
			return jobSubmission{}, fmt.Errorf("%w: field env has the invalid variable name %q", backends.ErrInvalidTask, k)
		}
		env[k] = v
	}
	spec, err := json.Marshal(t)
	if err != nil {
		return jobSubmission{}, fmt.Errorf("%w: encode task %s: %v", backends.ErrInvalidTask, t.ID, err)
	}
	env["HORIZONS_TASK"] = string(spec)
	env["HORIZONS_TASK_ID"] = t.ID
	wall := t.WallTime
	if wall == 0 {
		wall = d.cfg.MaxWallTime
	}
	p := jobProperties{
		Name:                    d.cfg.JobPrefix + t.ID,
		Partition:               d.cfg.Partition,
		CurrentWorkingDirectory: d.cfg.WorkDir,
		StandardOutput:          path.Join(d.cfg.WorkDir, "horizons-%j.out"),
		StandardError:           path.Join(d.cfg.WorkDir, "horizons-%j.err"),
		Environment:             env,
		TimeLimit:               int(math.Ceil(wall.Minutes())),
		MemoryPerNode:           t.MemoryMB,
		Comment:                 "cosmic-horizons task " + t.ID,
	}
	if t.GPUs > 0 {
		p.Gres = fmt.Sprintf("gpu:%d", t.GPUs)
	}
	script := "#!/bin/bash\n" +
		"# Cosmic Horizons task " + shellQuote(t.ID) + ": agent " + shellQuote(t.Agent) + ", dataset " + shellQuote(t.DatasetID) + "\n" +
		"set -eu\n" +
		"exec " + d.cfg.Command + " --result " + shellQuote(d.cfg.WorkDir) + `/horizons-"${SLURM_JOB_ID}".result.json` + "\n"
	return jobSubmission{Script: script, Job: p}, nil
}

// shellQuote quotes s for bash in single quotes.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Submit sends t to slurmrestd as a batch job.
func (d *Driver) Submit(ctx context.Context, t backends.Task) (backends.Handle, error) {
	if err := t.Validate(); err != nil {
		return backends.Handle{}, err
	}
	caps, err := d.Capabilities(ctx)
	if err != nil {
		return backends.Handle{}, err
	}
	if err := caps.Fits(t); err != nil {
		return backends.Handle{}, err
	}
	sub, err := d.submission(t)
	if err != nil {
		return backends.Handle{}, err
	}
	if _, err := d.version(ctx); err != nil {
		return backends.Handle{}, err
	}
	if !d.cfg.NoDuplicateCheck {
		// Submit is idempotent per task id: a caller that lost the handle
		// (it crashed between submit and storing it) gets the same job.
		jobs, err := d.Jobs(ctx)
		if err != nil {
			return backends.Handle{}, fmt.Errorf("slurm: submit task %s: look for an earlier submission: %w", t.ID, err)
		}
		if id := newest(jobs, sub.Job.Name); id > 0 {
			d.log.Info("task already submitted; returning its job", "task", t.ID, "job_id", id)
			return d.handle(id, t.GPUs), nil
		}
	}
	var out struct {
		JobID *int64 `json:"job_id"`
	}
	for attempt := 0; ; attempt++ {
		err := d.call(ctx, http.MethodPost, "/job/submit", d.body(sub), &out)
		if err == nil {
			break
		}
		var tr transient
		if !errors.As(err, &tr) || attempt >= d.cfg.RetryMax {
			return backends.Handle{}, fmt.Errorf("slurm: submit task %s: %w", t.ID, err)
		}
		wait := retryablehttp.DefaultBackoff(d.cfg.RetryWaitMin, d.cfg.RetryWaitMax, attempt, nil)
		d.log.Warn("slurmrestd submit failed; checking for the job before sending it again", "task", t.ID, "attempt", attempt+1, "err", err)
		select {
		case <-ctx.Done():
			return backends.Handle{}, fmt.Errorf("%w: slurm: submit task %s: %v (after %v)", backends.ErrUnavailable, t.ID, ctx.Err(), err)
		case <-time.After(wait):
		}
		// The failed request may have reached slurmctld: a job with this
		// task's name is the one it created.
		if id, ok := d.findJob(ctx, sub.Job.Name); ok {
			out.JobID = &id
			break
		}
	}
	if out.JobID == nil || *out.JobID <= 0 {
		return backends.Handle{}, fmt.Errorf("%w: slurmrestd accepted task %s but returned no job_id", backends.ErrUnavailable, t.ID)
	}
	d.log.Debug("submitted", "task", t.ID, "job_id", *out.JobID, "partition", d.cfg.Partition)
	return d.handle(*out.JobID, t.GPUs), nil
}

func (d *Driver) handle(jobID int64, gpus int) backends.Handle {
	id := strconv.FormatInt(jobID, 10)
	d.mu.Lock()
	d.gpus[id] = gpus
	d.mu.Unlock()
	return backends.Handle{Backend: d.cfg.Name, ExternalID: id}
}

// newest returns the highest job id named name, or 0.
func newest(jobs []Job, name string) int64 {
	var id int64
	for _, j := range jobs {
		if j.Name == name && j.JobID > id {
			id = j.JobID
		}
	}
	return id
}

// Job is the part of a v0.0.38 job record this client reads. Nullable
// fields are pointers.
type Job struct {
	JobID       int64  `json:"job_id"`
	Name        string `json:"name"`
	JobState    string `json:"job_state"`
	StateReason string `json:"state_reason"`
	StateDesc   string `json:"state_description"`
	ExitCode    *int   `json:"exit_code"`
	Nodes       string `json:"nodes"`
	Partition   string `json:"partition"`
	StartTime   *int64 `json:"start_time"`
	EndTime     *int64 `json:"end_time"`
	SubmitTime  *int64 `json:"submit_time"`
	TimeLimit   *int64 `json:"time_limit"`
	StdOut      string `json:"standard_output"`
	WorkDir     string `json:"current_working_directory"`
	Comment     string `json:"comment"`
	UserName    string `json:"user_name"`
}

// findJob returns the newest job named name, if slurmctld holds one.
func (d *Driver) findJob(ctx context.Context, name string) (int64, bool) {
	jobs, err := d.Jobs(ctx)
	if err != nil {
		return 0, false
	}
	id := newest(jobs, name)
	return id, id > 0
}

// ID returns the job id as a handle's ExternalID.
func (j Job) ID() string { return strconv.FormatInt(j.JobID, 10) }

// Jobs lists every job slurmctld holds (GET /jobs), this backend's and
// others'; finished jobs stay until slurmctld purges them (MinJobAge).
func (d *Driver) Jobs(ctx context.Context) ([]Job, error) {
	var out struct {
		Jobs []Job `json:"jobs"`
	}
	if _, err := d.version(ctx); err != nil {
		return nil, err
	}
	if err := d.call(ctx, http.MethodGet, d.listPath("/jobs"), nil, &out); err != nil {
		return nil, err
	}
	return out.Jobs, nil
}

func validJobID(s string) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n > 0 && strconv.FormatInt(n, 10) == s
}

// job fetches one job record.
func (d *Driver) job(ctx context.Context, h backends.Handle) (Job, error) {
	if h.Backend != "" && h.Backend != d.cfg.Name {
		return Job{}, fmt.Errorf("%w: handle belongs to backend %q, not %q", backends.ErrTaskNotFound, h.Backend, d.cfg.Name)
	}
	if !validJobID(h.ExternalID) {
		return Job{}, fmt.Errorf("%w: %q is not a Slurm job id", backends.ErrTaskNotFound, h.ExternalID)
	}
	var out struct {
		Jobs []Job `json:"jobs"`
	}
	if err := d.call(ctx, http.MethodGet, "/job/"+h.ExternalID, nil, &out); err != nil {
		return Job{}, err
	}
	for _, j := range out.Jobs {
		if strconv.FormatInt(j.JobID, 10) == h.ExternalID {
			return j, nil
		}
	}
	return Job{}, fmt.Errorf("%w: slurmrestd returned no record for job %s", backends.ErrTaskNotFound, h.ExternalID)
}

// Status reports the job behind h.
func (d *Driver) Status(ctx context.Context, h backends.Handle) (backends.Status, error) {
	j, err := d.job(ctx, h)
	if err != nil {
		return backends.Status{}, err
	}
	st := JobStatus(j)
	// The agent runner's files, when WorkDir is visible here (a shared
	// filesystem or a single-node cluster).
	switch st.State {
	case backends.TaskCompleted:
		if r, err := d.ReadResult(h.ExternalID); err == nil {
			st.Result = r
		}
	case backends.TaskRunning, backends.TaskFailed, backends.TaskTimeout, backends.TaskCancelled:
		if p, note, ok := d.readProgress(h.ExternalID); ok {
			// 100 belongs to COMPLETED alone.
			st.Progress = math.Min(p, 99)
			if st.State == backends.TaskRunning && note != "" {
				// The agent's latest note ("stage imaging started"),
				// as the local backend reports it.
				st.Message = note
			}
		}
		if st.State == backends.TaskFailed {
			if msg := d.readRunnerError(h.ExternalID); msg != "" {
				st.Message += ": " + msg
			}
		}
	}
	return st, nil
}

// readProgress reads the progress file the agent runner keeps
// (WorkDir/horizons-<job id>.progress.json).
func (d *Driver) readProgress(jobID string) (percent float64, note string, ok bool) {
	b, err := os.ReadFile(path.Join(d.cfg.WorkDir, "horizons-"+jobID+".progress.json"))
	if err != nil {
		return 0, "", false
	}
	var p struct {
		Percent *float64 `json:"percent"`
		Note    string   `json:"note"`
	}
	if json.Unmarshal(b, &p) != nil || p.Percent == nil || math.IsNaN(*p.Percent) {
		return 0, "", false
	}
	return math.Min(math.Max(*p.Percent, 0), 100), p.Note, true
}

// readRunnerError returns the error the agent runner wrote into the
// result file of a failed job, if any.
func (d *Driver) readRunnerError(jobID string) string {
	b, err := os.ReadFile(path.Join(d.cfg.WorkDir, "horizons-"+jobID+".result.json"))
	if err != nil {
		return ""
	}
	var doc struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &doc) != nil {
		return ""
	}
	const max = 500
	if len(doc.Error) > max {
		doc.Error = doc.Error[:max] + "..."
	}
	return doc.Error
}

// WaitStatus decodes a raw wait(2) status as Slurm reports it in exit_code:
// the exit code, or the signal that killed the process.
func WaitStatus(raw int) (exit int, signal int) {
	if raw&0x7f != 0 && raw < 256 {
		return 128 + raw&0x7f, raw & 0x7f
	}
	return (raw >> 8) & 0xff, 0
}

// State maps a Slurm job state (v0.0.38: one word, possibly with flags
// after it) onto a task state.
func State(s string) backends.TaskState {
	base := strings.ToUpper(strings.TrimSpace(s))
	if i := strings.IndexAny(base, " +,"); i >= 0 {
		base = base[:i]
	}
	switch base {
	case "RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "STOPPED":
		return backends.TaskRunning
	case "COMPLETED":
		return backends.TaskCompleted
	case "FAILED", "NODE_FAIL", "BOOT_FAIL", "OUT_OF_MEMORY", "DEADLINE", "PREEMPTED", "SPECIAL_EXIT", "REVOKED":
		return backends.TaskFailed
	case "CANCELLED":
		return backends.TaskCancelled
	case "TIMEOUT":
		return backends.TaskTimeout
	}
	// PENDING, CONFIGURING, REQUEUED, REQUEUE_FED, REQUEUE_HOLD, RESIZING,
	// SUSPENDED, RESV_DEL_HOLD and anything unknown: not running yet.
	return backends.TaskPending
}

func unixTime(p *int64) time.Time {
	if p == nil || *p <= 0 {
		return time.Time{}
	}
	return time.Unix(*p, 0).UTC()
}

// JobStatus turns a job record into a task status.
func JobStatus(j Job) backends.Status {
	st := backends.Status{State: State(j.JobState), Node: j.Nodes, StartedAt: unixTime(j.StartTime)}
	if st.State.Terminal() {
		st.EndedAt = unixTime(j.EndTime)
	}
	if st.State == backends.TaskPending {
		st.StartedAt = time.Time{}
		if j.StateReason != "" && j.StateReason != "None" {
			st.Message = "pending: " + j.StateReason
		}
	}
	var sig int
	if j.ExitCode != nil && st.State.Terminal() {
		code, s := WaitStatus(*j.ExitCode)
		st.ExitCode, sig = &code, s
	}
	switch st.State {
	case backends.TaskCompleted:
		st.Progress = 100
	case backends.TaskFailed, backends.TaskTimeout, backends.TaskCancelled:
		var parts []string
		parts = append(parts, "Slurm job "+strconv.FormatInt(j.JobID, 10)+" ended "+j.JobState)
		if j.StateReason != "" && j.StateReason != "None" {
			parts = append(parts, "reason "+j.StateReason)
		}
		if sig != 0 {
			parts = append(parts, fmt.Sprintf("killed by signal %d", sig))
		} else if st.ExitCode != nil {
			parts = append(parts, fmt.Sprintf("exit code %d", *st.ExitCode))
		}
		if j.StateDesc != "" {
			parts = append(parts, j.StateDesc)
		}
		st.Message = strings.Join(parts, ", ")
	}
	return st
}

// Cancel sends DELETE /job/{id}. Cancelling a finished job is not an error
// (slurmrestd answers 200); a job Slurm does not know is ErrTaskNotFound.
func (d *Driver) Cancel(ctx context.Context, h backends.Handle) error {
	if h.Backend != "" && h.Backend != d.cfg.Name {
		return fmt.Errorf("%w: handle belongs to backend %q, not %q", backends.ErrTaskNotFound, h.Backend, d.cfg.Name)
	}
	if !validJobID(h.ExternalID) {
		return fmt.Errorf("%w: %q is not a Slurm job id", backends.ErrTaskNotFound, h.ExternalID)
	}
	return d.call(ctx, http.MethodDelete, "/job/"+h.ExternalID, nil, nil)
}

// Recover returns the status of the job behind h; Slurm keeps jobs across
// restarts of this process until it purges finished ones.
func (d *Driver) Recover(ctx context.Context, h backends.Handle) (backends.Status, error) {
	return d.Status(ctx, h)
}

// Capacity lists the jobs slurmctld holds and counts this backend's
// (named horizons-*): running, pending, and the GPUs of running jobs this
// process submitted.
func (d *Driver) Capacity(ctx context.Context) (backends.Capacity, error) {
	jobs, err := d.Jobs(ctx)
	if err != nil {
		return backends.Capacity{}, err
	}
	c := backends.Capacity{TotalGPUs: d.cfg.TotalGPUs, FreeSlots: -1}
	used := 0
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, j := range jobs {
		if !strings.HasPrefix(j.Name, d.cfg.JobPrefix) {
			continue
		}
		switch State(j.JobState) {
		case backends.TaskRunning:
			c.Running++
			used += d.gpus[strconv.FormatInt(j.JobID, 10)]
		case backends.TaskPending:
			c.Pending++
		}
	}
	c.FreeGPUs = max(c.TotalGPUs-used, 0)
	return c, nil
}

// Close releases idle connections; later calls return ErrClosed.
func (d *Driver) Close() error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.http.HTTPClient.CloseIdleConnections()
	return nil
}

// ReadResult reads the result file the agent runner wrote for a job, when
// WorkDir is on a filesystem this process can read (a shared filesystem,
// or a single-node cluster).
func (d *Driver) ReadResult(jobID string) (json.RawMessage, error) {
	if !validJobID(jobID) {
		return nil, fmt.Errorf("%w: %q is not a Slurm job id", backends.ErrTaskNotFound, jobID)
	}
	b, err := os.ReadFile(path.Join(d.cfg.WorkDir, "horizons-"+jobID+".result.json"))
	if err != nil {
		return nil, fmt.Errorf("slurm: result of job %s: %w", jobID, err)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("slurm: result of job %s is not JSON", jobID)
	}
	return b, nil
}

// Logs returns the last max bytes (0: 64 KiB) of a job's standard output
// and standard error (WorkDir/horizons-<job id>.out and .err), when
// WorkDir is visible here. A stream the job has not written is empty.
func (d *Driver) Logs(jobID string, max int) (stdout, stderr []byte, err error) {
	if !validJobID(jobID) {
		return nil, nil, fmt.Errorf("%w: %q is not a Slurm job id", backends.ErrTaskNotFound, jobID)
	}
	if max <= 0 {
		max = 64 << 10
	}
	tail := func(name string) ([]byte, error) {
		f, err := os.Open(path.Join(d.cfg.WorkDir, name))
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if off := fi.Size() - int64(max); off > 0 {
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				return nil, err
			}
		}
		return io.ReadAll(io.LimitReader(f, int64(max)))
	}
	if stdout, err = tail("horizons-" + jobID + ".out"); err != nil {
		return nil, nil, fmt.Errorf("slurm: logs of job %s: %w", jobID, err)
	}
	if stderr, err = tail("horizons-" + jobID + ".err"); err != nil {
		return nil, nil, fmt.Errorf("slurm: logs of job %s: %w", jobID, err)
	}
	return stdout, stderr, nil
}

var _ backends.Driver = (*Driver)(nil)

// current returns the resolved API version, or "" before detection.
func (d *Driver) current() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ver
}

// version returns the API version, detecting it on first use when the
// configuration says auto.
func (d *Driver) version(ctx context.Context) (string, error) {
	if v := d.current(); v != "" {
		return v, nil
	}
	v, err := d.Detect(ctx)
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	d.ver = v
	d.mu.Unlock()
	d.log.Info("slurmrestd API version detected", "version", v)
	return v, nil
}

// Detect reads the server's OpenAPI document (/openapi/v3) and returns the
// newest API version this client speaks that the server serves.
func (d *Driver) Detect(ctx context.Context) (string, error) {
	var doc struct {
		Paths map[string]json.RawMessage `json:"paths"`
	}
	if err := d.call(ctx, http.MethodGet, "/openapi/v3", nil, &doc); err != nil {
		return "", fmt.Errorf("slurm: detect API version: %w", err)
	}
	var served []string
	for _, v := range []string{"v0.0.41", "v0.0.38"} {
		for p := range doc.Paths {
			if strings.HasPrefix(p, "/slurm/"+v+"/") {
				served = append(served, v)
				break
			}
		}
	}
	if len(served) == 0 {
		return "", fmt.Errorf("%w: slurmrestd at %s serves none of v0.0.41, v0.0.38 (start it with -s openapi/v0.0.38 or newer)", backends.ErrUnavailable, d.cfg.URL)
	}
	return served[0], nil
}

// LogValue logs the configuration without the token.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", c.URL), slog.String("api_version", c.APIVersion), slog.String("user", c.UserName),
		slog.Bool("token_set", c.Token != "" || c.TokenFunc != nil), slog.String("partition", c.Partition),
		slog.String("work_dir", c.WorkDir), slog.Int("max_gpus", c.MaxGPUs))
}

// String describes the configuration without the token, so that %v and %+v
// never print it.
func (c Config) String() string {
	return fmt.Sprintf("slurm.Config{URL:%s APIVersion:%s UserName:%s Token:[redacted] Partition:%s WorkDir:%s}", c.URL, c.APIVersion, c.UserName, c.Partition, c.WorkDir)
}
