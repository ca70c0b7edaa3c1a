package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Sentinel errors of the client. Every error it returns wraps one of them
// (timeouts and cancellations also wrap the context's error).
var (
	// ErrUnavailable reports that Ollama could not be reached or kept
	// failing (connection errors, 5xx after the retries, timeouts).
	ErrUnavailable = errors.New("llm: ollama unavailable")
	// ErrModelNotFound reports an HTTP 404 for a model that is not pulled.
	ErrModelNotFound = errors.New("llm: model not found")
	// ErrRejected reports any other 4xx answer: the request itself is wrong
	// and is never retried.
	ErrRejected = errors.New("llm: request rejected")
	// ErrMalformed reports a response body that is not the JSON the API
	// documents.
	ErrMalformed = errors.New("llm: malformed response")
	// ErrConfig reports an invalid client or advisor configuration.
	ErrConfig = errors.New("llm: invalid configuration")
)

// APIError is an HTTP error answer from Ollama. It wraps ErrModelNotFound
// (404), ErrRejected (other 4xx) or ErrUnavailable (5xx).
type APIError struct {
	// Endpoint is the method and path, e.g. "POST /api/chat".
	Endpoint string
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the "error" field of the body (or the start of the body).
	Message string
}

// Error formats the endpoint, status and message.
func (e *APIError) Error() string {
	return fmt.Sprintf("llm: %s: HTTP %d: %s", e.Endpoint, e.StatusCode, e.Message)
}

// Unwrap maps the status onto the package's sentinels.
func (e *APIError) Unwrap() error {
	switch {
	case e.StatusCode == http.StatusNotFound:
		return ErrModelNotFound
	case e.StatusCode >= 400 && e.StatusCode < 500:
		return ErrRejected
	}
	return ErrUnavailable
}

// Config configures a Client. Zero values take the documented defaults.
type Config struct {
	// BaseURL of the Ollama server (default http://localhost:11434).
	BaseURL string
	// Timeout bounds each call, retries included (default 60 s).
	Timeout time.Duration
	// RetryMax is the number of retries after a connection error or a 5xx
	// answer (default 2; negative means none). 4xx answers are never
	// retried.
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the exponential backoff between
	// attempts (defaults 250 ms and 2 s; a server's Retry-After is capped
	// at RetryWaitMax).
	RetryWaitMin, RetryWaitMax time.Duration
	// HTTPClient carries the transport (default: a new http.Client with
	// Go's default transport settings).
	HTTPClient *http.Client
	// Logger receives retry diagnostics (default: discarded).
	Logger *slog.Logger
}

// Client talks to the Ollama REST API (/api/chat, /api/generate,
// /api/tags) with "stream": false, per-call timeouts and bounded retries
// through go-retryablehttp. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	timeout time.Duration
	rc      *retryablehttp.Client
}

// NewClient returns a client for cfg (nil means all defaults).
func NewClient(cfg *Config) (*Client, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.BaseURL == "" {
		c.BaseURL = "http://localhost:11434"
	}
	u, err := url.Parse(strings.TrimRight(c.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: BaseURL = %q: want http(s)://host[:port]", ErrConfig, c.BaseURL)
	}
	if c.Timeout == 0 {
		c.Timeout = 60 * time.Second
	}
	if c.Timeout < 0 {
		return nil, fmt.Errorf("%w: Timeout = %v: must be positive", ErrConfig, c.Timeout)
	}
	switch {
	case c.RetryMax == 0:
		c.RetryMax = 2
	case c.RetryMax < 0:
		c.RetryMax = 0
	case c.RetryMax > 10:
		return nil, fmt.Errorf("%w: RetryMax = %d: at most 10", ErrConfig, c.RetryMax)
	}
	if c.RetryWaitMin == 0 {
		c.RetryWaitMin = 250 * time.Millisecond
	}
	if c.RetryWaitMax == 0 {
		c.RetryWaitMax = 2 * time.Second
	}
	if c.RetryWaitMin < 0 || c.RetryWaitMax < c.RetryWaitMin {
		return nil, fmt.Errorf("%w: RetryWaitMin..RetryWaitMax = %v..%v: need 0 <= min <= max", ErrConfig, c.RetryWaitMin, c.RetryWaitMax)
	}
	rc := retryablehttp.NewClient()
	rc.HTTPClient = c.HTTPClient
	if rc.HTTPClient == nil {
		rc.HTTPClient = &http.Client{}
	}
	rc.RetryMax = c.RetryMax
	rc.RetryWaitMin, rc.RetryWaitMax = c.RetryWaitMin, c.RetryWaitMax
	rc.Logger = nil
	if c.Logger != nil {
		rc.Logger = c.Logger // *slog.Logger is a retryablehttp.LeveledLogger
	}
	rc.CheckRetry = checkRetry
	maxWait := c.RetryWaitMax
	rc.Backoff = func(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
		return min(retryablehttp.DefaultBackoff(lo, hi, attempt, resp), maxWait)
	}
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	return &Client{base: u, timeout: c.Timeout, rc: rc}, nil
}

// checkRetry retries connection errors and 5xx answers (except 501), never
// a 4xx, and stops as soon as the context is done.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented {
		return true, nil
	}
	return false, nil
}

// Message is one chat message.
type Message struct {
	// Role is system, user, assistant or tool.
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatRequest is the body of POST /api/chat (sent with "stream": false).
type ChatRequest struct {
	Model    string    `json:"model"`
	Messages []Message `json:"messages"`
	// Format is "json" (as a JSON string) or a JSON Schema object that the
	// answer must follow.
	Format json.RawMessage `json:"format,omitempty"`
	// Options are model options, e.g. {"temperature": 0, "seed": 1}.
	Options   map[string]any `json:"options,omitempty"`
	KeepAlive string         `json:"keep_alive,omitempty"`
}

// Stats are the timing figures Ollama returns (durations in nanoseconds on
// the wire).
type Stats struct {
	TotalDuration      time.Duration `json:"total_duration,omitempty"`
	LoadDuration       time.Duration `json:"load_duration,omitempty"`
	PromptEvalCount    int           `json:"prompt_eval_count,omitempty"`
	PromptEvalDuration time.Duration `json:"prompt_eval_duration,omitempty"`
	EvalCount          int           `json:"eval_count,omitempty"`
	EvalDuration       time.Duration `json:"eval_duration,omitempty"`
}

// ChatResponse is the answer of POST /api/chat.
type ChatResponse struct {
	Model      string    `json:"model"`
	CreatedAt  time.Time `json:"created_at"`
	Message    Message   `json:"message"`
	Done       bool      `json:"done"`
	DoneReason string    `json:"done_reason,omitempty"`
	Stats
}

// GenerateRequest is the body of POST /api/generate (sent with "stream":
// false).
type GenerateRequest struct {
	Model     string          `json:"model"`
	Prompt    string          `json:"prompt"`
	System    string          `json:"system,omitempty"`
	Format    json.RawMessage `json:"format,omitempty"`
	Options   map[string]any  `json:"options,omitempty"`
	KeepAlive string          `json:"keep_alive,omitempty"`
}

// GenerateResponse is the answer of POST /api/generate.
type GenerateResponse struct {
	Model      string    `json:"model"`
	CreatedAt  time.Time `json:"created_at"`
	Response   string    `json:"response"`
	Done       bool      `json:"done"`
	DoneReason string    `json:"done_reason,omitempty"`
	Context    []int     `json:"context,omitempty"`
	Stats
}

// ModelDetails describes a local model.
type ModelDetails struct {
	Format            string   `json:"format"`
	Family            string   `json:"family"`
	Families          []string `json:"families"`
	ParameterSize     string   `json:"parameter_size"`
	QuantizationLevel string   `json:"quantization_level"`
}

// ModelInfo is one entry of GET /api/tags.
type ModelInfo struct {
	Name       string       `json:"name"`
	Model      string       `json:"model"`
	ModifiedAt time.Time    `json:"modified_at"`
	Size       int64        `json:"size"`
	Digest     string       `json:"digest"`
	Details    ModelDetails `json:"details"`
}

// TagsResponse is the answer of GET /api/tags.
type TagsResponse struct {
	Models []ModelInfo `json:"models"`
}

// Chat sends a chat request and returns the complete answer.
func (c *Client) Chat(ctx context.Context, req ChatRequest) (*ChatResponse, error) {
	if err := checkModel(req.Model, len(req.Messages) == 0, "Messages"); err != nil {
		return nil, err
	}
	body := struct {
		ChatRequest
		Stream bool `json:"stream"`
	}{req, false}
	var out ChatResponse
	var content strings.Builder
	err := c.do(ctx, http.MethodPost, "/api/chat", body, func(dec *json.Decoder) error {
		return decodeStream(dec, func(raw json.RawMessage) (bool, error) {
			var part ChatResponse
			if err := json.Unmarshal(raw, &part); err != nil {
				return false, err
			}
			content.WriteString(part.Message.Content)
			out = part
			return part.Done, nil
		})
	})
	if err != nil {
		return nil, err
	}
	out.Message.Content = content.String()
	if out.Message.Role == "" {
		out.Message.Role = "assistant"
	}
	return &out, nil
}

// Generate sends a completion request and returns the complete answer.
func (c *Client) Generate(ctx context.Context, req GenerateRequest) (*GenerateResponse, error) {
	if err := checkModel(req.Model, false, ""); err != nil {
		return nil, err
	}
	body := struct {
		GenerateRequest
		Stream bool `json:"stream"`
	}{req, false}
	var out GenerateResponse
	var text strings.Builder
	err := c.do(ctx, http.MethodPost, "/api/generate", body, func(dec *json.Decoder) error {
		return decodeStream(dec, func(raw json.RawMessage) (bool, error) {
			var part GenerateResponse
			if err := json.Unmarshal(raw, &part); err != nil {
				return false, err
			}
			text.WriteString(part.Response)
			out = part
			return part.Done, nil
		})
	})
	if err != nil {
		return nil, err
	}
	out.Response = text.String()
	return &out, nil
}

// Tags lists the models available locally.
func (c *Client) Tags(ctx context.Context) (*TagsResponse, error) {
	var out TagsResponse
	err := c.do(ctx, http.MethodGet, "/api/tags", nil, func(dec *json.Decoder) error {
		return dec.Decode(&out)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

func checkModel(model string, noMessages bool, field string) error {
	if strings.TrimSpace(model) == "" {
		return fmt.Errorf("%w: Model = %q: a model name is required", ErrRejected, model)
	}
	if noMessages {
		return fmt.Errorf("%w: %s is empty: at least one message is required", ErrRejected, field)
	}
	return nil
}

// decodeStream reads one JSON object, or a newline-delimited stream of
// them if the server streams despite "stream": false, until done.
func decodeStream(dec *json.Decoder, part func(json.RawMessage) (bool, error)) error {
	n := 0
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if err == io.EOF && n > 0 {
				return fmt.Errorf("stream ended after %d parts without \"done\": true", n)
			}
			if err == io.EOF {
				return errors.New("empty body")
			}
			return err
		}
		n++
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return fmt.Errorf("error in stream part %d: %s", n, e.Error)
		}
		done, err := part(raw)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

const maxBody = 16 << 20

func (c *Client) do(ctx context.Context, method, path string, body any, decode func(*json.Decoder) error) error {
	endpoint := method + " " + path
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var raw any
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%w: %s: encode request: %v", ErrRejected, endpoint, err)
		}
		raw = b
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, c.base.String()+path, raw)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrRejected, endpoint, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.rc.Do(req)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("%w: %s: %w (timeout %v)", ErrUnavailable, endpoint, ctxErr, c.timeout)
		}
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, endpoint, err)
	}
	defer resp.Body.Close()
	lr := io.LimitReader(resp.Body, maxBody)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(lr, 4096))
		msg := strings.TrimSpace(string(b))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		return &APIError{Endpoint: endpoint, StatusCode: resp.StatusCode, Message: msg}
	}
	// Buffer the body so a read error (timeout mid-body) is told apart
	// from bad JSON.
	b, err := io.ReadAll(lr)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("%w: %s: reading body: %w", ErrUnavailable, endpoint, ctxErr)
		}
		return fmt.Errorf("%w: %s: reading body: %v", ErrUnavailable, endpoint, err)
	}
	if err := decode(json.NewDecoder(bytes.NewReader(b))); err != nil {
		snippet := string(b)
		if len(snippet) > 120 {
			snippet = snippet[:120] + "..."
		}
		return fmt.Errorf("%w: %s: %v (body %q)", ErrMalformed, endpoint, err, snippet)
	}
	return nil
}
