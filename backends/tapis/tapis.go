package tapis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
)

// Defaults used when a Config field is zero.
const (
	DefaultName          = "tapis"
	DefaultResultFile    = "horizons.result.json"
	DefaultGPUArg        = "--gres=gpu:%d"
	DefaultMaxWallTime   = 48 * time.Hour
	DefaultRetryMax      = 3
	DefaultCallTimeout   = 30 * time.Second
	DefaultRefreshBefore = 5 * time.Minute
	// MaxResultBytes bounds the result file the driver reads into memory.
	MaxResultBytes = 16 << 20
)

// Config configures the Tapis backend.
type Config struct {
	// Name is the backend name stored in handles; default "tapis".
	Name string
	// URL is the tenant's base URL, e.g. https://tacc.tapis.io; the
	// driver adds /v3/jobs/... and /v3/oauth2/tokens. Empty means
	// https://<Tenant>.tapis.io.
	URL string
	// Tenant is the Tapis tenant id (e.g. "tacc"); it only derives URL
	// when URL is empty. One of URL and Tenant is required.
	Tenant string
	// Username is the Tapis user. Required with Password.
	Username string
	// Password, when set, lets the driver mint and refresh its own token
	// with POST /v3/oauth2/tokens (password grant). Never logged.
	Password string
	// Token is a Tapis JWT minted elsewhere, used as is when Password and
	// TokenFunc are unset. Never logged.
	Token string
	// TokenFunc, when set, is called before every request for the current
	// token; it overrides Password and Token.
	TokenFunc func(ctx context.Context) (string, error)
	// AppID and AppVersion name the Tapis application that runs the agent
	// runner (horizons-agent). Required.
	AppID, AppVersion string
	// ExecSystemID is the execution system; empty means the app's
	// default.
	ExecSystemID string
	// ExecSystemLogicalQueue is the batch queue; empty means the app's or
	// system's default.
	ExecSystemLogicalQueue string
	// ArchiveSystemID is where outputs are archived; empty means the app's
	// default.
	ArchiveSystemID string
	// GPUArg is the scheduler option that asks for GPUs, with %d for the
	// count; default "--gres=gpu:%d".
	GPUArg string
	// ResultFile is the file, relative to the job output directory, the
	// runner writes its result to (horizons-agent run --result FILE);
	// default "horizons.result.json". The runner's progress file is the
	// same name with .progress.json for .result.json.
	ResultFile string
	// Env is extra environment for every job. Values are never logged.
	Env map[string]string
	// MaxGPUs, MaxMemoryMB and MaxWallTime are what one task may ask for;
	// MaxWallTime defaults to 48 h, the others to 0 (no GPUs; no memory
	// limit).
	MaxGPUs     int
	MaxMemoryMB int
	MaxWallTime time.Duration
	// TotalGPUs is what Capacity reports; default MaxGPUs.
	TotalGPUs int
	// Agents are the agents the runner can run; default the three
	// built-in agents.
	Agents []string
	// HTTPClient is the underlying client; nil means a pooled default that
	// follows no redirect to another host (the token would go with it).
	HTTPClient *http.Client
	// RetryMax is how many times a retryable call is retried; default 3.
	// A negative value disables retries.
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the backoff; default 100 ms and
	// 2 s.
	RetryWaitMin, RetryWaitMax time.Duration
	// CallTimeout bounds one call including its retries; default 30 s.
	CallTimeout time.Duration
	// RefreshBefore is how long before its expiry a minted token is
	// replaced; default 5 min.
	RefreshBefore time.Duration
	// CapacityTTL is how long Capacity reuses its job listing while no
	// submit, cancel or observed state change has happened; default 2 s.
	// A negative value lists every time.
	CapacityTTL time.Duration
	// Now is the clock the token expiry is read against; nil means
	// time.Now.
	Now func() time.Time
	// Logger receives one line per retry and token refresh; nil means
	// slog.Default().
	Logger *slog.Logger
}

// LogValue logs the configuration without the password or token.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", c.URL), slog.String("tenant", c.Tenant), slog.String("user", c.Username),
		slog.Bool("password_set", c.Password != ""), slog.Bool("token_set", c.Token != "" || c.TokenFunc != nil),
		slog.String("app", c.AppID+"-"+c.AppVersion), slog.String("exec_system", c.ExecSystemID))
}

// String describes the configuration without the password or token, so
// that %v and %+v never print them.
func (c Config) String() string {
	return fmt.Sprintf("tapis.Config{URL:%s Tenant:%s Username:%s Password:[redacted] Token:[redacted] AppID:%s AppVersion:%s ExecSystemID:%s}",
		c.URL, c.Tenant, c.Username, c.AppID, c.AppVersion, c.ExecSystemID)
}

// Driver talks to the Tapis Jobs API. It implements backends.Driver and is
// safe for concurrent use.
type Driver struct {
	cfg  Config
	base string
	http *retryablehttp.Client
	log  *slog.Logger

	tokMu  sync.Mutex // held while minting
	tok    string
	tokExp time.Time
	minted atomic.Value // the current minted token, for redaction

	mu       sync.Mutex
	closed   bool
	gpus     map[string]int             // job uuid -> GPUs, for Capacity
	results  map[string]json.RawMessage // job uuid -> result, once read
	progress map[string]float64         // job uuid -> highest progress reported
	agentErr map[string]string          // job uuid -> the runner's error, once read
	states   map[string]backends.TaskState
	capAt    time.Time // when capy was read; zero when stale
	capy     backends.Capacity
}

var tenantName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// New checks cfg and returns a driver. It does not contact Tapis; call
// Ping to check the URL and credentials at start-up.
func New(cfg *Config) (*Driver, error) {
	if cfg == nil {
		return nil, errors.New("tapis: config is nil; URL (or Tenant), Username with Password or Token, AppID and AppVersion are required")
	}
	c := *cfg
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.URL == "" {
		if c.Tenant == "" {
			return nil, errors.New("tapis: config fields URL and Tenant are both empty; set URL (e.g. https://tacc.tapis.io) or Tenant (e.g. tacc)")
		}
		if !tenantName.MatchString(c.Tenant) {
			return nil, fmt.Errorf("tapis: config field Tenant is %q, want a tenant id such as tacc", c.Tenant)
		}
		c.URL = "https://" + c.Tenant + ".tapis.io"
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tapis: config field URL is %q, want http(s)://host of the Tapis tenant, e.g. https://tacc.tapis.io", redactURL(c.URL))
	}
	if u.User != nil {
		return nil, errors.New("tapis: config field URL must not carry credentials; use Username and Password or Token")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("tapis: config field URL is %q, want no query or fragment", c.URL)
	}
	if c.TokenFunc == nil {
		switch {
		case c.Password != "" && c.Username == "":
			return nil, errors.New("tapis: config field Username is empty but Password is set; the password grant needs both")
		case c.Password == "" && c.Token == "":
			return nil, errors.New("tapis: no credentials: set Username and Password (the driver mints and refreshes tokens) or Token (a Tapis JWT)")
		}
	}
	if c.AppID == "" || c.AppVersion == "" {
		return nil, fmt.Errorf("tapis: config fields AppID (%q) and AppVersion (%q) are required: the Tapis app that runs horizons-agent", c.AppID, c.AppVersion)
	}
	if c.MaxGPUs < 0 || c.MaxMemoryMB < 0 || c.MaxWallTime < 0 || c.TotalGPUs < 0 {
		return nil, fmt.Errorf("tapis: config limits must be >= 0 (MaxGPUs %d, MaxMemoryMB %d, MaxWallTime %s, TotalGPUs %d)", c.MaxGPUs, c.MaxMemoryMB, c.MaxWallTime, c.TotalGPUs)
	}
	if c.GPUArg == "" {
		c.GPUArg = DefaultGPUArg
	}
	if strings.Count(c.GPUArg, "%d") != 1 || strings.Count(c.GPUArg, "%") != 1 {
		return nil, fmt.Errorf("tapis: config field GPUArg is %q, want one %%d for the GPU count", c.GPUArg)
	}
	if c.ResultFile == "" {
		c.ResultFile = DefaultResultFile
	}
	if strings.HasPrefix(c.ResultFile, "/") || strings.Contains(c.ResultFile, "..") {
		return nil, fmt.Errorf("tapis: config field ResultFile is %q, want a path relative to the job output directory", c.ResultFile)
	}
	for k := range c.Env {
		if err := checkEnvName(k); err != nil {
			return nil, fmt.Errorf("tapis: config field Env: %v", err)
		}
	}
	if len(c.Agents) == 0 {
		c.Agents = []string{agents.NameAlphaCal, agents.NameImageReconstruction, agents.NameAnomalyDetection}
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
	if c.RefreshBefore <= 0 {
		c.RefreshBefore = DefaultRefreshBefore
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.CapacityTTL == 0 {
		c.CapacityTTL = 2 * time.Second
	}
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("backend", c.Name)
	rc := retryablehttp.NewClient()
	if c.HTTPClient != nil {
		rc.HTTPClient = c.HTTPClient
	} else {
		// Go forwards custom headers on redirects: never follow one to
		// another host, which would receive the X-Tapis-Token.
		rc.HTTPClient.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("tapis: stopped after 5 redirects")
			}
			if req.URL.Host != via[0].URL.Host {
				return fmt.Errorf("tapis: refusing the redirect from %s to another host %s (it would receive the token)", via[0].URL.Host, req.URL.Host)
			}
			return nil
		}
	}
	rc.RetryMax, rc.RetryWaitMin, rc.RetryWaitMax = c.RetryMax, c.RetryWaitMin, c.RetryWaitMax
	rc.CheckRetry = checkRetry
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	rc.Logger = nil
	rc.RequestLogHook = func(_ retryablehttp.Logger, r *http.Request, attempt int) {
		if attempt > 0 {
			log.Warn("tapis retry", "method", r.Method, "path", r.URL.Path, "attempt", attempt)
		}
	}
	return &Driver{
		cfg:      c,
		base:     strings.TrimRight(c.URL, "/"),
		http:     rc,
		log:      log,
		gpus:     map[string]int{},
		results:  map[string]json.RawMessage{},
		progress: map[string]float64{},
		agentErr: map[string]string{},
		states:   map[string]backends.TaskState{},
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

// Config returns the configuration with its defaults filled in.
func (d *Driver) Config() Config { return d.cfg }

// Name returns the backend name.
func (d *Driver) Name() string { return d.cfg.Name }

type ctxKey int

const keySubmit ctxKey = 1

// checkRetry retries connection errors and 5xx answers; for a submit
// (marked in the context) only failures to connect and gateway answers
// 502/503/504, so a job is never created twice. 4xx is never retried.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	submit := ctx.Value(keySubmit) != nil
	if err != nil {
		if submit {
			var op *net.OpError
			return errors.As(err, &op) && op.Op == "dial", nil
		}
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	switch c := resp.StatusCode; {
	case c == http.StatusBadGateway || c == http.StatusServiceUnavailable || c == http.StatusGatewayTimeout:
		return true, nil
	case c >= 500 && c != http.StatusNotImplemented:
		return !submit, nil
	}
	return false, nil
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

// APIError is a failed Tapis call: the HTTP status and the envelope's
// status and message. It wraps the backends sentinel it maps onto.
type APIError struct {
	Method, Path string
	// StatusCode is the HTTP status.
	StatusCode int
	// Status and Message are the envelope's fields ("error", and Tapis's
	// explanation); Version is the service version.
	Status, Message, Version string
	// Hint says what to do.
	Hint string
	// Err is the backends sentinel (ErrUnauthorized, ErrTaskNotFound, ...)
	// or nil.
	Err error
}

func (e *APIError) Error() string {
	var b strings.Builder
	if e.Err != nil {
		b.WriteString(e.Err.Error())
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "tapis %s %s: HTTP %d", e.Method, e.Path, e.StatusCode)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Unwrap returns the sentinel.
func (e *APIError) Unwrap() error { return e.Err }

// envelope is the wrapper of every Tapis answer.
type envelope struct {
	Status  string          `json:"status"`
	Message string          `json:"message"`
	Version string          `json:"version"`
	Result  json.RawMessage `json:"result"`
}

// secrets lists the strings no error may carry.
func (d *Driver) secrets() []string {
	var s []string
	for _, v := range []string{d.cfg.Password, d.cfg.Token} {
		if v != "" {
			s = append(s, v)
		}
	}
	if t, _ := d.minted.Load().(string); t != "" {
		s = append(s, t)
	}
	return s
}

func (d *Driver) redact(s string) string {
	for _, v := range d.secrets() {
		s = strings.ReplaceAll(s, v, "[redacted]")
	}
	return s
}

func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = url.User("[redacted]")
		return u.String()
	}
	return s
}

// request is one call.
type request struct {
	method, path string // path below the base URL, e.g. /v3/jobs/submit
	query        url.Values
	body         any
	auth         bool // send X-Tapis-Token
	submit       bool // not idempotent
}

// send does one request (with the retries of checkRetry) and returns the
// answer with its body read, or an error mapped onto the sentinels.
func (d *Driver) send(ctx context.Context, r request, token string) (*http.Response, []byte, error) {
	var raw any
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, nil, fmt.Errorf("tapis: encode %s %s: %w", r.method, r.path, err)
		}
		raw = b
	}
	full := d.base + r.path
	if len(r.query) > 0 {
		full += "?" + r.query.Encode()
	}
	if r.submit {
		ctx = context.WithValue(ctx, keySubmit, true)
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, r.method, full, raw)
	if err != nil {
		return nil, nil, fmt.Errorf("tapis: %s %s: %w", r.method, r.path, err)
	}
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.auth {
		req.Header.Set("X-Tapis-Token", token)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("%w: tapis %s %s: %v (Config.CallTimeout is %s)", backends.ErrUnavailable, r.method, r.path, ctx.Err(), d.cfg.CallTimeout)
		}
		return nil, nil, fmt.Errorf("%w: tapis at %s: %s; check the URL and the network", backends.ErrUnavailable, d.cfg.URL, d.redact(err.Error()))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResultBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: read tapis answer to %s %s: %v", backends.ErrUnavailable, r.method, r.path, err)
	}
	return resp, data, nil
}

// apiError builds the error for a non-2xx answer.
func (d *Driver) apiError(r request, status int, data []byte) *APIError {
	var env envelope
	e := &APIError{Method: r.method, Path: r.path, StatusCode: status}
	if json.Unmarshal(data, &env) == nil {
		e.Status, e.Version = env.Status, env.Version
		e.Message = env.Message
	}
	if e.Message == "" {
		e.Message = strings.TrimSpace(string(data))
	}
	if len(e.Message) > 400 {
		e.Message = e.Message[:400] + "…"
	}
	e.Message = d.redact(e.Message)
	switch {
	case status == http.StatusUnauthorized:
		e.Err = backends.ErrUnauthorized
		switch {
		case d.cfg.TokenFunc != nil:
			e.Hint = "the token from Config.TokenFunc was rejected; have it return a fresh Tapis JWT"
		case d.cfg.Password != "":
			e.Hint = fmt.Sprintf("a freshly minted token for user %q was rejected; check the tenant URL %s", d.cfg.Username, d.cfg.URL)
		default:
			e.Hint = "the Token was rejected (expired or for another tenant); mint a new one, or set Username and Password so the driver refreshes it"
		}
	case status == http.StatusForbidden:
		e.Err = backends.ErrUnauthorized
		e.Hint = fmt.Sprintf("user %q may not do this: the caller must own the job, or the app %s-%s must be shared with them", d.cfg.Username, d.cfg.AppID, d.cfg.AppVersion)
	case status == http.StatusNotFound:
		e.Err = backends.ErrTaskNotFound
		e.Hint = "Tapis does not know this job (wrong tenant, or another user's job)"
		if strings.Contains(r.path, "/output/") {
			e.Hint = "no such file in the job's output directory"
		}
	case status == http.StatusBadRequest && r.submit:
		e.Err = backends.ErrInvalidTask
		e.Hint = fmt.Sprintf("Tapis rejected the job request; check that app %s version %s and exec system %q exist and accept it", d.cfg.AppID, d.cfg.AppVersion, d.cfg.ExecSystemID)
	case status >= 500:
		e.Err = backends.ErrUnavailable
		e.Hint = "Tapis failed; try again later"
		if r.submit {
			e.Hint = "Tapis failed; the job may or may not have been created (submitting the same task again finds it by name)"
		}
	}
	return e
}

// call does an authenticated Jobs call and decodes the envelope's result
// into out. A 401 with a minted token mints a new one and tries once more.
func (d *Driver) call(ctx context.Context, r request, out any) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
	defer cancel()
	r.auth = true
	for attempt := 0; ; attempt++ {
		token, err := d.token(ctx, attempt > 0)
		if err != nil {
			return err
		}
		resp, data, err := d.send(ctx, r, token)
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 && d.cfg.TokenFunc == nil && d.cfg.Password != "" {
			d.log.Info("tapis token rejected; minting a new one", "path", r.path)
			continue
		}
		if resp.StatusCode/100 != 2 {
			return d.apiError(r, resp.StatusCode, data)
		}
		var env envelope
		if err := json.Unmarshal(data, &env); err != nil {
			return fmt.Errorf("%w: tapis %s %s answered %d with a body that is not a Tapis envelope: %.80q", backends.ErrUnavailable, r.method, r.path, resp.StatusCode, data)
		}
		if env.Status != "" && env.Status != "success" {
			return &APIError{Method: r.method, Path: r.path, StatusCode: resp.StatusCode, Status: env.Status, Message: d.redact(env.Message), Version: env.Version, Err: backends.ErrUnavailable}
		}
		if out != nil {
			if len(env.Result) == 0 || string(env.Result) == "null" {
				return fmt.Errorf("%w: tapis %s %s answered %s with no result", backends.ErrUnavailable, r.method, r.path, env.Status)
			}
			if err := json.Unmarshal(env.Result, out); err != nil {
				return fmt.Errorf("tapis: decode result of %s %s: %w", r.method, r.path, err)
			}
		}
		return nil
	}
}

// tokenResult is the result of POST /v3/oauth2/tokens.
type tokenResult struct {
	AccessToken struct {
		AccessToken string `json:"access_token"`
		ExpiresAt   string `json:"expires_at"`
		ExpiresIn   *int64 `json:"expires_in"`
	} `json:"access_token"`
}

// token returns the token for the next call; force mints a new one.
func (d *Driver) token(ctx context.Context, force bool) (string, error) {
	if d.cfg.TokenFunc != nil {
		t, err := d.cfg.TokenFunc(ctx)
		if err != nil {
			return "", fmt.Errorf("%w: tapis Config.TokenFunc failed: %s", backends.ErrUnauthorized, d.redact(err.Error()))
		}
		if t == "" {
			return "", fmt.Errorf("%w: tapis Config.TokenFunc returned an empty token", backends.ErrUnauthorized)
		}
		return t, nil
	}
	if d.cfg.Password == "" {
		return d.cfg.Token, nil
	}
	d.tokMu.Lock()
	defer d.tokMu.Unlock()
	now := d.cfg.Now()
	if !force && d.tok != "" && now.Before(d.tokExp.Add(-d.cfg.RefreshBefore)) {
		return d.tok, nil
	}
	r := request{method: http.MethodPost, path: "/v3/oauth2/tokens",
		body: map[string]string{"username": d.cfg.Username, "password": d.cfg.Password, "grant_type": "password"}}
	resp, data, err := d.send(ctx, r, "")
	if err != nil {
		return "", fmt.Errorf("tapis: mint a token for user %q: %w", d.cfg.Username, err)
	}
	if resp.StatusCode/100 != 2 {
		e := d.apiError(r, resp.StatusCode, data)
		if resp.StatusCode/100 == 4 {
			e.Err = backends.ErrUnauthorized
			e.Hint = fmt.Sprintf("Tapis refused the password grant for user %q; check Username and the password, and that URL %s is the user's tenant", d.cfg.Username, d.cfg.URL)
		}
		return "", e
	}
	var env envelope
	var res tokenResult
	if err := json.Unmarshal(data, &env); err == nil {
		err = json.Unmarshal(env.Result, &res)
	}
	if res.AccessToken.AccessToken == "" {
		return "", fmt.Errorf("%w: tapis POST /v3/oauth2/tokens answered %d without result.access_token.access_token", backends.ErrUnavailable, resp.StatusCode)
	}
	exp := now.Add(time.Hour)
	switch {
	case res.AccessToken.ExpiresIn != nil:
		exp = now.Add(time.Duration(*res.AccessToken.ExpiresIn) * time.Second)
	case res.AccessToken.ExpiresAt != "":
		if t, err := parseTime(res.AccessToken.ExpiresAt); err == nil {
			exp = t
		}
	}
	d.tok, d.tokExp = res.AccessToken.AccessToken, exp
	d.minted.Store(d.tok)
	d.log.Debug("tapis token minted", "user", d.cfg.Username, "expires", exp)
	return d.tok, nil
}

// parseTime reads the time formats Tapis uses (RFC 3339 with or without a
// zone, with or without fractions).
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("tapis: time %q is not RFC 3339", s)
}

// Ping checks that Tapis answers and accepts the credentials: it mints a
// token (with Password) and lists one job.
func (d *Driver) Ping(ctx context.Context) error {
	var out []JobListItem
	q := url.Values{"limit": {"1"}}
	if err := d.call(ctx, request{method: http.MethodGet, path: "/v3/jobs/list", query: q}, &out); err != nil {
		return fmt.Errorf("tapis: ping %s: %w", d.cfg.URL, err)
	}
	return nil
}

// KeyValuePair is a Tapis environment variable.
type KeyValuePair struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ArgSpec is a Tapis app or scheduler argument.
type ArgSpec struct {
	Name string `json:"name,omitempty"`
	Arg  string `json:"arg"`
}

// ParameterSet is the parameterSet of a job request.
type ParameterSet struct {
	AppArgs          []ArgSpec      `json:"appArgs,omitempty"`
	SchedulerOptions []ArgSpec      `json:"schedulerOptions,omitempty"`
	EnvVariables     []KeyValuePair `json:"envVariables,omitempty"`
}

// SubmitRequest is the ReqSubmitJob body Submit sends.
type SubmitRequest struct {
	Name                   string            `json:"name"`
	AppID                  string            `json:"appId"`
	AppVersion             string            `json:"appVersion"`
	Description            string            `json:"description,omitempty"`
	ExecSystemID           string            `json:"execSystemId,omitempty"`
	ExecSystemLogicalQueue string            `json:"execSystemLogicalQueue,omitempty"`
	ArchiveSystemID        string            `json:"archiveSystemId,omitempty"`
	NodeCount              int               `json:"nodeCount"`
	MemoryMB               int               `json:"memoryMB,omitempty"`
	MaxMinutes             int               `json:"maxMinutes"`
	ParameterSet           ParameterSet      `json:"parameterSet"`
	Tags                   []string          `json:"tags,omitempty"`
	Notes                  map[string]string `json:"notes,omitempty"`
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func checkEnvName(k string) error {
	if !envName.MatchString(k) {
		return fmt.Errorf("%w: field env has the invalid variable name %q", backends.ErrInvalidTask, k)
	}
	if strings.HasPrefix(strings.ToLower(k), "_tapis") {
		return fmt.Errorf("%w: field env has the variable name %q; names starting _tapis are Tapis's own", backends.ErrInvalidTask, k)
	}
	return nil
}

// JobRequest returns the ReqSubmitJob body Submit sends for t. It is
// exported for inspection and tests.
func (d *Driver) JobRequest(t backends.Task) (SubmitRequest, error) {
	if err := t.Validate(); err != nil {
		return SubmitRequest{}, err
	}
	env := map[string]string{}
	for k, v := range d.cfg.Env {
		env[k] = v
	}
	for k, v := range t.Env {
		if err := checkEnvName(k); err != nil {
			return SubmitRequest{}, err
		}
		env[k] = v
	}
	spec := t
	spec.Env = nil // sent as real environment variables; not twice
	b, err := json.Marshal(spec)
	if err != nil {
		return SubmitRequest{}, fmt.Errorf("%w: encode task %s: %v", backends.ErrInvalidTask, t.ID, err)
	}
	env["HORIZONS_TASK"] = string(b)
	env["HORIZONS_TASK_ID"] = t.ID
	env["HORIZONS_RESULT_FILE"] = d.cfg.ResultFile
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ps := ParameterSet{AppArgs: []ArgSpec{{Name: "horizons-run", Arg: "run --result " + d.cfg.ResultFile}}}
	for _, k := range keys {
		ps.EnvVariables = append(ps.EnvVariables, KeyValuePair{Key: k, Value: env[k]})
	}
	if t.GPUs > 0 {
		ps.SchedulerOptions = []ArgSpec{{Name: "horizons-gpus", Arg: fmt.Sprintf(d.cfg.GPUArg, t.GPUs)}}
	}
	wall := t.WallTime
	if wall == 0 {
		wall = d.cfg.MaxWallTime
	}
	name := "horizons-" + t.ID
	if len(name) > 64 {
		name = name[:64]
	}
	return SubmitRequest{
		Name:                   name,
		AppID:                  d.cfg.AppID,
		AppVersion:             d.cfg.AppVersion,
		Description:            fmt.Sprintf("Cosmic Horizons task %s: agent %s on dataset %s", t.ID, t.Agent, t.DatasetID),
		ExecSystemID:           d.cfg.ExecSystemID,
		ExecSystemLogicalQueue: d.cfg.ExecSystemLogicalQueue,
		ArchiveSystemID:        d.cfg.ArchiveSystemID,
		NodeCount:              1,
		MemoryMB:               t.MemoryMB,
		MaxMinutes:             int(math.Ceil(wall.Minutes())),
		ParameterSet:           ps,
		Tags:                   []string{"cosmic-horizons", "agent:" + t.Agent},
		Notes:                  map[string]string{"horizons_task_id": t.ID, "agent": t.Agent, "dataset_id": t.DatasetID},
	}, nil
}

// handleData is what a handle carries for Recover and Capacity.
type handleData struct {
	TaskID string `json:"task_id"`
	GPUs   int    `json:"gpus"`
}

// Submit sends t to Tapis as a job.
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
	body, err := d.JobRequest(t)
	if err != nil {
		return backends.Handle{}, err
	}
	// A task already submitted (the caller restarted between submit and
	// recording the handle) gets its job back, not a second one.
	uuid, err := d.findByName(ctx, body.Name)
	if err != nil {
		return backends.Handle{}, fmt.Errorf("tapis: submit task %s: look for an earlier submission: %w", t.ID, err)
	}
	if uuid != "" {
		d.log.Info("task already submitted; reusing its job", "task", t.ID, "job_uuid", uuid)
		return d.handle(t, uuid), nil
	}
	for attempt := 0; ; attempt++ {
		var j Job
		err := d.call(ctx, request{method: http.MethodPost, path: "/v3/jobs/submit", body: body, submit: true}, &j)
		if err == nil {
			if !validUUID(j.UUID) {
				return backends.Handle{}, fmt.Errorf("%w: tapis accepted task %s but returned the job uuid %q", backends.ErrUnavailable, t.ID, j.UUID)
			}
			d.log.Debug("submitted", "task", t.ID, "job_uuid", j.UUID, "app", d.cfg.AppID)
			return d.handle(t, j.UUID), nil
		}
		if !ambiguous(err) || attempt > 0 {
			return backends.Handle{}, fmt.Errorf("tapis: submit task %s: %w", t.ID, err)
		}
		// The request may have reached Tapis: look for the job before
		// sending it once more.
		uuid, ferr := d.findByName(ctx, body.Name)
		if ferr != nil {
			return backends.Handle{}, fmt.Errorf("tapis: submit task %s: %w", t.ID, err)
		}
		if uuid != "" {
			d.log.Info("submit answer lost; found the job", "task", t.ID, "job_uuid", uuid, "err", err)
			return d.handle(t, uuid), nil
		}
		d.log.Warn("submit failed before Tapis created the job; sending it again", "task", t.ID, "err", err)
	}
}

// ambiguous reports whether a failed submit may have created the job: a
// 5xx answer, or no answer at all.
func ambiguous(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode >= 500
	}
	return errors.Is(err, backends.ErrUnavailable)
}

func (d *Driver) handle(t backends.Task, uuid string) backends.Handle {
	d.mu.Lock()
	d.gpus[uuid] = t.GPUs
	d.capAt = time.Time{}
	d.mu.Unlock()
	data, _ := json.Marshal(handleData{TaskID: t.ID, GPUs: t.GPUs})
	return backends.Handle{Backend: d.cfg.Name, ExternalID: uuid, Data: data}
}

// findByName looks among the user's newest jobs (GET /v3/jobs/list, 100)
// for one of Config.AppID named name, and returns its uuid or "".
func (d *Driver) findByName(ctx context.Context, name string) (string, error) {
	var out []JobListItem
	q := url.Values{"limit": {"100"}, "orderBy": {"created(desc)"}}
	if err := d.call(ctx, request{method: http.MethodGet, path: "/v3/jobs/list", query: q}, &out); err != nil {
		return "", err
	}
	for _, j := range out {
		if j.Name == name && j.AppID == d.cfg.AppID && validUUID(j.UUID) {
			return j.UUID, nil
		}
	}
	return "", nil
}

// Job is the part of a Tapis job record this driver reads.
type Job struct {
	UUID          string `json:"uuid"`
	Name          string `json:"name"`
	Owner         string `json:"owner"`
	Tenant        string `json:"tenant"`
	Status        string `json:"status"`
	Condition     string `json:"condition"`
	LastMessage   string `json:"lastMessage"`
	Created       string `json:"created"`
	Ended         string `json:"ended"`
	LastUpdated   string `json:"lastUpdated"`
	AppID         string `json:"appId"`
	AppVersion    string `json:"appVersion"`
	ExecSystemID  string `json:"execSystemId"`
	RemoteJobID   string `json:"remoteJobId"`
	RemoteOutcome string `json:"remoteOutcome"`
	RemoteStarted string `json:"remoteStarted"`
	RemoteEnded   string `json:"remoteEnded"`
	RemoteResult  string `json:"remoteResultInfo"`
	BlockedCount  int    `json:"blockedCount"`
}

// JobListItem is one entry of GET /v3/jobs/list.
type JobListItem struct {
	UUID          string `json:"uuid"`
	Name          string `json:"name"`
	AppID         string `json:"appId"`
	Status        string `json:"status"`
	Condition     string `json:"condition"`
	RemoteStarted string `json:"remoteStarted"`
}

var uuidRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func validUUID(s string) bool { return uuidRE.MatchString(s) }

func (d *Driver) uuidOf(h backends.Handle) (string, error) {
	if h.Backend != "" && h.Backend != d.cfg.Name {
		return "", fmt.Errorf("%w: handle belongs to backend %q, not %q", backends.ErrTaskNotFound, h.Backend, d.cfg.Name)
	}
	if !validUUID(h.ExternalID) {
		return "", fmt.Errorf("%w: %q is not a Tapis job uuid", backends.ErrTaskNotFound, h.ExternalID)
	}
	return h.ExternalID, nil
}

func jobPath(uuid, rest string) string { return "/v3/jobs/" + url.PathEscape(uuid) + rest }

// GetJob reads the job record (GET /v3/jobs/{uuid}).
func (d *Driver) GetJob(ctx context.Context, uuid string) (Job, error) {
	if !validUUID(uuid) {
		return Job{}, fmt.Errorf("%w: %q is not a Tapis job uuid", backends.ErrTaskNotFound, uuid)
	}
	var j Job
	if err := d.call(ctx, request{method: http.MethodGet, path: jobPath(uuid, "")}, &j); err != nil {
		return Job{}, err
	}
	return j, nil
}

// JobStatus reads the short status (GET /v3/jobs/{uuid}/status): the
// Tapis status and condition.
func (d *Driver) JobStatus(ctx context.Context, uuid string) (status, condition string, err error) {
	if !validUUID(uuid) {
		return "", "", fmt.Errorf("%w: %q is not a Tapis job uuid", backends.ErrTaskNotFound, uuid)
	}
	var out struct {
		Status    string `json:"status"`
		Condition string `json:"condition"`
	}
	if err := d.call(ctx, request{method: http.MethodGet, path: jobPath(uuid, "/status")}, &out); err != nil {
		return "", "", err
	}
	return out.Status, out.Condition, nil
}

// The 13 Tapis job states.
const (
	StatusPending          = "PENDING"
	StatusProcessingInputs = "PROCESSING_INPUTS"
	StatusStagingInputs    = "STAGING_INPUTS"
	StatusStagingJob       = "STAGING_JOB"
	StatusSubmittingJob    = "SUBMITTING_JOB"
	StatusQueued           = "QUEUED"
	StatusRunning          = "RUNNING"
	StatusArchiving        = "ARCHIVING"
	StatusBlocked          = "BLOCKED"
	StatusPaused           = "PAUSED"
	StatusFinished         = "FINISHED"
	StatusCancelled        = "CANCELLED"
	StatusFailed           = "FAILED"
)

// Statuses lists the 13 Tapis job states in lifecycle order.
var Statuses = []string{StatusPending, StatusProcessingInputs, StatusStagingInputs, StatusStagingJob,
	StatusSubmittingJob, StatusQueued, StatusRunning, StatusArchiving, StatusBlocked, StatusPaused,
	StatusFinished, StatusCancelled, StatusFailed}

// State maps a Tapis job status and condition onto a task state. started
// reports whether the remote job had started (remoteStarted set): BLOCKED
// and PAUSED are running after that and pending before. An unknown status
// is pending.
func State(status, condition string, started bool) backends.TaskState {
	switch strings.ToUpper(status) {
	case StatusRunning, StatusArchiving:
		return backends.TaskRunning
	case StatusBlocked, StatusPaused:
		if started {
			return backends.TaskRunning
		}
		return backends.TaskPending
	case StatusFinished:
		return backends.TaskCompleted
	case StatusCancelled:
		return backends.TaskCancelled
	case StatusFailed:
		if condition == "SCHEDULER_TIMEOUT" {
			return backends.TaskTimeout
		}
		return backends.TaskFailed
	}
	// PENDING, PROCESSING_INPUTS, STAGING_INPUTS, STAGING_JOB,
	// SUBMITTING_JOB, QUEUED and anything unknown.
	return backends.TaskPending
}

// stageProgress is the progress a status stands for.
func stageProgress(status string) float64 {
	switch status {
	case StatusPending:
		return 0
	case StatusProcessingInputs:
		return 2
	case StatusStagingInputs:
		return 4
	case StatusStagingJob:
		return 6
	case StatusSubmittingJob:
		return 8
	case StatusQueued:
		return 10
	case StatusRunning:
		return 10 // plus 80 % of the runner's progress, when it reports
	case StatusArchiving:
		return 90
	case StatusFinished:
		return 100
	}
	return 0
}

// JobStatusOf turns a job record into a task status (without the result).
func JobStatusOf(j Job) backends.Status {
	st := backends.Status{State: State(j.Status, j.Condition, j.RemoteStarted != ""), Node: j.ExecSystemID}
	st.Progress = stageProgress(j.Status)
	if t, err := parseTime(j.RemoteStarted); err == nil {
		st.StartedAt = t
	}
	if st.State.Terminal() {
		for _, s := range []string{j.RemoteEnded, j.Ended, j.LastUpdated} {
			if t, err := parseTime(s); err == nil {
				st.EndedAt = t
				break
			}
		}
		if !st.StartedAt.IsZero() && st.EndedAt.Before(st.StartedAt) {
			st.EndedAt = st.StartedAt
		}
	}
	switch st.State {
	case backends.TaskPending:
		if j.Status != StatusPending && j.Status != "" {
			st.Message = "tapis " + j.Status
			if j.Status == StatusBlocked || j.Status == StatusPaused {
				st.Message += ": " + j.LastMessage
			}
		}
	case backends.TaskCompleted:
		zero := 0
		st.ExitCode = &zero
	case backends.TaskFailed, backends.TaskTimeout, backends.TaskCancelled:
		parts := []string{"Tapis job " + j.UUID + " ended " + j.Status}
		if j.Condition != "" {
			parts = append(parts, "condition "+j.Condition)
		}
		if j.RemoteJobID != "" {
			parts = append(parts, "remote job "+j.RemoteJobID)
		}
		if j.LastMessage != "" {
			parts = append(parts, j.LastMessage)
		}
		st.Message = strings.Join(parts, ", ")
	}
	return st
}

// Status reports the job behind h. A finished job's result is the
// runner's result file from the job outputs.
func (d *Driver) Status(ctx context.Context, h backends.Handle) (backends.Status, error) {
	uuid, err := d.uuidOf(h)
	if err != nil {
		return backends.Status{}, err
	}
	j, err := d.GetJob(ctx, uuid)
	if err != nil {
		return backends.Status{}, err
	}
	st := JobStatusOf(j)
	switch {
	case j.Status == StatusRunning:
		if p, ok := d.runnerProgress(ctx, uuid); ok {
			st.Progress = max(st.Progress, 10+0.8*p)
		}
	case st.State == backends.TaskFailed:
		d.mu.Lock()
		msg, ok := d.agentErr[uuid]
		d.mu.Unlock()
		if !ok {
			msg = d.runnerError(ctx, uuid)
			d.mu.Lock()
			d.agentErr[uuid] = msg
			d.mu.Unlock()
		}
		if msg != "" {
			st.Message += "; agent: " + msg
		}
	}
	d.mu.Lock()
	if st.State != backends.TaskCompleted {
		// Progress never goes down (a RUNNING job that is BLOCKED).
		st.Progress = max(st.Progress, d.progress[uuid])
		if st.State.Terminal() && st.Progress >= 100 {
			st.Progress = 99
		}
	}
	if !st.State.Terminal() {
		d.progress[uuid] = st.Progress
	} else {
		delete(d.progress, uuid)
	}
	if d.states[uuid] != st.State {
		d.states[uuid] = st.State
		d.capAt = time.Time{}
	}
	res, cached := d.results[uuid]
	d.mu.Unlock()
	if st.State != backends.TaskCompleted {
		return st, nil
	}
	if !cached {
		res, err = d.ReadResult(ctx, uuid)
		if err != nil {
			if !errors.Is(err, backends.ErrTaskNotFound) && !errors.Is(err, errBadResult) {
				// Possibly transient: do not settle on a missing result.
				return backends.Status{}, fmt.Errorf("tapis: job %s finished but its result could not be read: %w", uuid, err)
			}
			// The job finished without a result file: report what Tapis
			// knows, and say so.
			res, _ = json.Marshal(map[string]any{"tapis_job": uuid, "status": j.Status, "condition": j.Condition, "remote_job_id": j.RemoteJobID, "result_file_missing": d.cfg.ResultFile})
			st.Message = fmt.Sprintf("finished without the result file %s: %v", d.cfg.ResultFile, err)
		}
		d.mu.Lock()
		d.results[uuid] = res
		d.mu.Unlock()
	}
	st.Result = res
	return st, nil
}

// progressFile is the runner's progress file for ResultFile.
func (d *Driver) progressFile() string {
	stem := strings.TrimSuffix(d.cfg.ResultFile, ".result.json")
	if stem == d.cfg.ResultFile {
		stem = strings.TrimSuffix(d.cfg.ResultFile, path.Ext(d.cfg.ResultFile))
	}
	return stem + ".progress.json"
}

// runnerProgress reads the percentage the runner reports in its progress
// file while the job runs; ok is false when there is none (best effort:
// any failure is ignored).
func (d *Driver) runnerProgress(ctx context.Context, uuid string) (float64, bool) {
	b, err := d.download(ctx, uuid, d.progressFile(), true, 1<<16)
	if err != nil {
		return 0, false
	}
	var p struct {
		Percent *float64 `json:"percent"`
	}
	if json.Unmarshal(b, &p) != nil || p.Percent == nil || math.IsNaN(*p.Percent) {
		return 0, false
	}
	return math.Max(0, math.Min(100, *p.Percent)), true
}

// runnerError reads the error the runner wrote into its result file when
// the agent failed (best effort).
func (d *Driver) runnerError(ctx context.Context, uuid string) string {
	b, err := d.download(ctx, uuid, d.cfg.ResultFile, false, 1<<16)
	if err != nil {
		return ""
	}
	var r struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &r) != nil {
		return ""
	}
	if len(r.Error) > 300 {
		r.Error = r.Error[:300] + "…"
	}
	return d.redact(r.Error)
}

// errBadResult marks a result file that is there but unusable.
var errBadResult = errors.New("tapis: bad result file")

// ReadResult downloads and checks the runner's result file of a job.
func (d *Driver) ReadResult(ctx context.Context, uuid string) (json.RawMessage, error) {
	rc, err := d.Download(ctx, uuid, d.cfg.ResultFile)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, MaxResultBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read result of job %s: %v", backends.ErrUnavailable, uuid, err)
	}
	if len(b) > MaxResultBytes {
		return nil, fmt.Errorf("%w: result file %s of job %s is larger than %d bytes", errBadResult, d.cfg.ResultFile, uuid, MaxResultBytes)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%w: result file %s of job %s is not JSON", errBadResult, d.cfg.ResultFile, uuid)
	}
	return json.RawMessage(bytes.TrimSpace(b)), nil
}

// Cancel sends POST /v3/jobs/{uuid}/cancel. Cancelling a finished job
// (Tapis answers 409) is not an error; an unknown job is ErrTaskNotFound.
func (d *Driver) Cancel(ctx context.Context, h backends.Handle) error {
	uuid, err := d.uuidOf(h)
	if err != nil {
		return err
	}
	err = d.call(ctx, request{method: http.MethodPost, path: jobPath(uuid, "/cancel")}, nil)
	d.mu.Lock()
	d.capAt = time.Time{}
	d.mu.Unlock()
	var ae *APIError
	if errors.As(err, &ae) && ae.StatusCode == http.StatusConflict {
		return nil
	}
	return err
}

// Recover re-reads the job behind h after a restart of this process and
// restores what Capacity needs from the handle.
func (d *Driver) Recover(ctx context.Context, h backends.Handle) (backends.Status, error) {
	st, err := d.Status(ctx, h)
	if err != nil {
		return st, err
	}
	var hd handleData
	if len(h.Data) > 0 && json.Unmarshal(h.Data, &hd) == nil {
		d.mu.Lock()
		d.gpus[h.ExternalID] = hd.GPUs
		d.mu.Unlock()
	}
	return st, nil
}

// Capacity lists the user's recent jobs (GET /v3/jobs/list, the newest
// 500) and counts this backend's (app Config.AppID, named horizons-*):
// running, pending, and the GPUs of running jobs this process submitted or
// recovered.
func (d *Driver) Capacity(ctx context.Context) (backends.Capacity, error) {
	if err := d.check(ctx); err != nil {
		return backends.Capacity{}, err
	}
	d.mu.Lock()
	if !d.capAt.IsZero() && d.cfg.Now().Sub(d.capAt) < d.cfg.CapacityTTL {
		c := d.capy
		d.mu.Unlock()
		return c, nil
	}
	d.mu.Unlock()
	var out []JobListItem
	q := url.Values{"limit": {"500"}, "orderBy": {"created(desc)"}}
	if err := d.call(ctx, request{method: http.MethodGet, path: "/v3/jobs/list", query: q}, &out); err != nil {
		return backends.Capacity{}, err
	}
	c := backends.Capacity{TotalGPUs: d.cfg.TotalGPUs, FreeSlots: -1}
	used := 0
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, j := range out {
		if j.AppID != d.cfg.AppID || !strings.HasPrefix(j.Name, "horizons-") {
			continue
		}
		switch State(j.Status, j.Condition, j.RemoteStarted != "") {
		case backends.TaskRunning:
			c.Running++
			used += d.gpus[j.UUID]
		case backends.TaskPending:
			c.Pending++
		}
	}
	c.FreeGPUs = max(c.TotalGPUs-used, 0)
	d.capy, d.capAt = c, d.cfg.Now()
	return c, nil
}

// HistoryEvent is one entry of a job's history.
type HistoryEvent struct {
	Event            string    `json:"event"`
	Created          time.Time `json:"created"`
	EventDetail      string    `json:"eventDetail"`
	Description      string    `json:"description"`
	TransferTaskUUID string    `json:"transferTaskUuid,omitempty"`
}

// History reads a job's history (GET /v3/jobs/{uuid}/history), limit
// entries after skip; limit 0 means the server's default.
func (d *Driver) History(ctx context.Context, uuid string, limit, skip int) ([]HistoryEvent, error) {
	if !validUUID(uuid) {
		return nil, fmt.Errorf("%w: %q is not a Tapis job uuid", backends.ErrTaskNotFound, uuid)
	}
	if limit < 0 || skip < 0 {
		return nil, fmt.Errorf("tapis: history of job %s: limit %d and skip %d must be >= 0", uuid, limit, skip)
	}
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if skip > 0 {
		q.Set("skip", strconv.Itoa(skip))
	}
	var raw []struct {
		HistoryEvent
		Created string `json:"created"`
	}
	if err := d.call(ctx, request{method: http.MethodGet, path: jobPath(uuid, "/history"), query: q}, &raw); err != nil {
		return nil, err
	}
	out := make([]HistoryEvent, len(raw))
	for i, r := range raw {
		out[i] = r.HistoryEvent
		out[i].Created, _ = parseTime(r.Created) // zero when Tapis sends another format
	}
	return out, nil
}

// FileInfo is one entry of a job's output listing.
type FileInfo struct {
	Name         string    `json:"name"`
	Path         string    `json:"path"`
	Type         string    `json:"type"`
	MimeType     string    `json:"mimeType"`
	Size         int64     `json:"size"`
	LastModified time.Time `json:"lastModified"`
	URL          string    `json:"url"`
}

// outputPath escapes a path below the job output directory segment by
// segment; "" is the directory itself.
func outputPath(p string) (string, error) {
	p = strings.TrimPrefix(p, "/")
	if strings.Contains(p, "..") {
		return "", fmt.Errorf("tapis: output path %q must stay inside the job output directory", p)
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/"), nil
}

// Outputs lists a job's output directory dir ("" for the top)
// (GET /v3/jobs/{uuid}/output/list/{dir}). It works once the job has ended.
func (d *Driver) Outputs(ctx context.Context, uuid, dir string) ([]FileInfo, error) {
	if !validUUID(uuid) {
		return nil, fmt.Errorf("%w: %q is not a Tapis job uuid", backends.ErrTaskNotFound, uuid)
	}
	p, err := outputPath(dir)
	if err != nil {
		return nil, err
	}
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	var raw []struct {
		FileInfo
		LastModified string `json:"lastModified"`
	}
	if err := d.call(ctx, request{method: http.MethodGet, path: jobPath(uuid, "/output/list/"+p)}, &raw); err != nil {
		return nil, err
	}
	out := make([]FileInfo, len(raw))
	for i, r := range raw {
		out[i] = r.FileInfo
		out[i].LastModified, _ = parseTime(r.LastModified)
	}
	return out, nil
}

// Download reads one output file of a job, at most MaxResultBytes
// (GET /v3/jobs/{uuid}/output/download/{path}); the job must have ended.
// The caller closes it.
func (d *Driver) Download(ctx context.Context, uuid, file string) (io.ReadCloser, error) {
	b, err := d.download(ctx, uuid, file, false, MaxResultBytes)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (d *Driver) download(ctx context.Context, uuid, file string, allowIfRunning bool, limit int) ([]byte, error) {
	if !validUUID(uuid) {
		return nil, fmt.Errorf("%w: %q is not a Tapis job uuid", backends.ErrTaskNotFound, uuid)
	}
	p, err := outputPath(file)
	if err != nil {
		return nil, err
	}
	if p == "" || strings.HasSuffix(p, "/") {
		return nil, fmt.Errorf("tapis: download from job %s: path %q names a directory, want a file", uuid, file)
	}
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	r := request{method: http.MethodGet, path: jobPath(uuid, "/output/download/"+p), auth: true}
	if allowIfRunning {
		r.query = url.Values{"allowIfRunning": {"true"}}
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		token, err := d.token(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		resp, data, err := d.send(ctx, r, token)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 && d.cfg.TokenFunc == nil && d.cfg.Password != "" {
			continue
		}
		if resp.StatusCode/100 != 2 {
			return nil, d.apiError(r, resp.StatusCode, data)
		}
		if len(data) > limit {
			return nil, fmt.Errorf("%w: output %s of job %s is larger than %d bytes", errBadResult, file, uuid, limit)
		}
		return data, nil
	}
}

// Close releases idle connections; later calls return ErrClosed.
func (d *Driver) Close() error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.http.HTTPClient.CloseIdleConnections()
	return nil
}

var _ backends.Driver = (*Driver)(nil)
