package llm

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeOllama is an httptest server speaking the Ollama API. handle decides
// each answer; calls counts requests per path.
type fakeOllama struct {
	t      *testing.T
	srv    *httptest.Server
	calls  map[string]*atomic.Int32
	handle func(w http.ResponseWriter, r *http.Request, body map[string]any)
}

func newFake(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, body map[string]any)) *fakeOllama {
	f := &fakeOllama{t: t, handle: handle, calls: map[string]*atomic.Int32{"/api/chat": {}, "/api/generate": {}, "/api/tags": {}}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := f.calls[r.URL.Path]
		if !ok {
			http.Error(w, `{"error":"no such path"}`, http.StatusNotFound)
			return
		}
		c.Add(1)
		var body map[string]any
		if r.Method == http.MethodPost {
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s: Content-Type = %q", r.URL.Path, ct)
			}
			b, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(b, &body); err != nil {
				t.Errorf("%s: body is not JSON: %v", r.URL.Path, err)
			}
			if s, ok := body["stream"].(bool); !ok || s {
				t.Errorf("%s: stream = %v, want false", r.URL.Path, body["stream"])
			}
		}
		f.handle(w, r, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOllama) client(t *testing.T, cfg Config) *Client {
	cfg.BaseURL = f.srv.URL
	if cfg.RetryWaitMin == 0 {
		cfg.RetryWaitMin, cfg.RetryWaitMax = time.Millisecond, 5*time.Millisecond
	}
	c, err := NewClient(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func TestChatRequestAndAnswer(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/chat" {
			t.Errorf("got %s %s", r.Method, r.URL.Path)
		}
		if body["model"] != "llama3.2" {
			t.Errorf("model = %v", body["model"])
		}
		msgs, _ := body["messages"].([]any)
		if len(msgs) != 2 {
			t.Errorf("messages = %v", body["messages"])
		}
		// The format must arrive as the schema object itself.
		got, _ := json.Marshal(body["format"])
		var want any
		_ = json.Unmarshal(AdviceSchema.Raw(), &want)
		wantB, _ := json.Marshal(want)
		if string(got) != string(wantB) {
			t.Errorf("format = %s, want %s", got, wantB)
		}
		writeJSON(w, 200, map[string]any{"model": "llama3.2", "created_at": "2026-11-26T20:00:00Z",
			"message": map[string]any{"role": "assistant", "content": `{"ok":true}`}, "done": true, "done_reason": "stop",
			"total_duration": 1500000000, "eval_count": 12})
	})
	c := f.client(t, Config{})
	resp, err := c.Chat(context.Background(), ChatRequest{Model: "llama3.2", Format: AdviceSchema.Raw(),
		Messages: []Message{{Role: "system", Content: "s"}, {Role: "user", Content: "u"}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Message.Content != `{"ok":true}` || !resp.Done || resp.TotalDuration != 1500*time.Millisecond || resp.EvalCount != 12 {
		t.Errorf("response = %+v", resp)
	}
}

func TestGenerateAndTags(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		switch r.URL.Path {
		case "/api/generate":
			if body["prompt"] != "hi" || body["system"] != "sys" {
				t.Errorf("generate body = %v", body)
			}
			writeJSON(w, 200, map[string]any{"model": "m", "response": "hello", "done": true, "context": []int{1, 2}})
		case "/api/tags":
			if r.Method != http.MethodGet {
				t.Errorf("tags method = %s", r.Method)
			}
			writeJSON(w, 200, map[string]any{"models": []any{map[string]any{"name": "llama3.2:latest", "size": 2019393189,
				"digest": "a80c4f17acd5", "details": map[string]any{"family": "llama", "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}}}})
		}
	})
	c := f.client(t, Config{})
	g, err := c.Generate(context.Background(), GenerateRequest{Model: "m", Prompt: "hi", System: "sys"})
	if err != nil {
		t.Fatal(err)
	}
	if g.Response != "hello" || len(g.Context) != 2 {
		t.Errorf("generate = %+v", g)
	}
	tags, err := c.Tags(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(tags.Models) != 1 || tags.Models[0].Name != "llama3.2:latest" || tags.Models[0].Details.ParameterSize != "3.2B" || tags.Models[0].Size != 2019393189 {
		t.Errorf("tags = %+v", tags)
	}
}

// A server that streams NDJSON despite "stream": false is read to the end
// and its parts joined.
func TestStreamedAnswerIsJoined(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for _, part := range []string{`{"model":"m","response":"Hel","done":false}`, `{"model":"m","response":"lo","done":false}`, `{"model":"m","response":"!","done":true,"eval_count":3}`} {
			io.WriteString(w, part+"\n")
		}
	})
	g, err := f.client(t, Config{}).Generate(context.Background(), GenerateRequest{Model: "m", Prompt: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if g.Response != "Hello!" || g.EvalCount != 3 {
		t.Errorf("joined = %+v", g)
	}
}

func TestErrorPaths(t *testing.T) {
	cases := []struct {
		name     string
		handle   func(w http.ResponseWriter, n int32)
		want     error
		attempts int32
		msg      string
	}{
		{"404 model", func(w http.ResponseWriter, _ int32) {
			writeJSON(w, 404, map[string]any{"error": "model 'nope' not found, try pulling it first"})
		}, ErrModelNotFound, 1, "model 'nope' not found"},
		{"400 no retry", func(w http.ResponseWriter, _ int32) { writeJSON(w, 400, map[string]any{"error": "invalid format"}) }, ErrRejected, 1, "invalid format"},
		{"429 no retry", func(w http.ResponseWriter, _ int32) { writeJSON(w, 429, map[string]any{"error": "busy"}) }, ErrRejected, 1, "HTTP 429"},
		{"500 always", func(w http.ResponseWriter, _ int32) { writeJSON(w, 500, map[string]any{"error": "out of memory"}) }, ErrUnavailable, 3, "out of memory"},
		{"malformed body", func(w http.ResponseWriter, _ int32) { io.WriteString(w, `{"model": "m", "message": {`) }, ErrMalformed, 1, "body"},
		{"empty body", func(w http.ResponseWriter, _ int32) { w.WriteHeader(200) }, ErrMalformed, 1, "empty body"},
		{"error in stream", func(w http.ResponseWriter, _ int32) { io.WriteString(w, `{"error":"context overflow"}`) }, ErrMalformed, 1, "context overflow"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var n atomic.Int32
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) { c.handle(w, n.Add(1)) })
			_, err := f.client(t, Config{RetryMax: 2}).Chat(context.Background(), ChatRequest{Model: "nope", Messages: []Message{{Role: "user", Content: "x"}}})
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err = %q, want it to mention %q", err, c.msg)
			}
			if got := n.Load(); got != c.attempts {
				t.Errorf("attempts = %d, want %d", got, c.attempts)
			}
		})
	}
}

func TestRetryThenSuccess(t *testing.T) {
	var n atomic.Int32
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		if n.Add(1) <= 2 {
			writeJSON(w, 503, map[string]any{"error": "loading model"})
			return
		}
		writeJSON(w, 200, map[string]any{"model": "m", "response": "ok", "done": true})
	})
	g, err := f.client(t, Config{RetryMax: 2}).Generate(context.Background(), GenerateRequest{Model: "m", Prompt: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if g.Response != "ok" || n.Load() != 3 {
		t.Errorf("response %q after %d attempts, want ok after 3", g.Response, n.Load())
	}
}

func TestTimeout(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		<-r.Context().Done() // never answers in time
	})
	_, err := f.client(t, Config{Timeout: 50 * time.Millisecond}).Tags(context.Background())
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrUnavailable and DeadlineExceeded", err)
	}
}

func TestConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, err := NewClient(&Config{BaseURL: url, RetryMax: 1, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Tags(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestBadConfigAndRequests(t *testing.T) {
	for _, cfg := range []Config{{BaseURL: "ftp://x"}, {BaseURL: "http://"}, {Timeout: -1}, {RetryMax: 11}, {RetryWaitMin: time.Second, RetryWaitMax: time.Millisecond}} {
		if _, err := NewClient(&cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("NewClient(%+v) err = %v, want ErrConfig", cfg, err)
		}
	}
	c, err := NewClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Chat(context.Background(), ChatRequest{Model: "m"}); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "Messages") {
		t.Errorf("empty messages: err = %v", err)
	}
	if _, err := c.Generate(context.Background(), GenerateRequest{Prompt: "x"}); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "Model") {
		t.Errorf("no model: err = %v", err)
	}
}
