package llm

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

func rulesOnly(t *testing.T) *Advisor {
	a, err := NewAdvisor(nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestRulesVerdicts(t *testing.T) {
	a := rulesOnly(t)
	cases := []struct {
		name    string
		req     Request
		verdict Verdict
		mention string
		score   float64
	}{
		{"defaults approve", Request{Agent: "alphacal", GPUs: 1, Dataset: DatasetFacts{SizeGB: 10}}, Approve, "parameters suit", 1},
		{"unknown agent", Request{Agent: "astrologer"}, Reject, "astrologer", 0},
		{"invalid param", Request{Agent: "imaging", Params: json.RawMessage(`{"image_size":1000}`)}, Reject, "image_size", 0},
		{"undersampled and high gain", Request{Agent: "ImageReconstruction", Params: json.RawMessage(`{"cell_arcsec":2,"gain":0.4,"deconvolver":"hogbom"}`), Dataset: DatasetFacts{SizeGB: 5}}, Warn, "undersampled", 0.7},
		{"extended with hogbom", Request{Agent: "imaging", Params: json.RawMessage(`{"deconvolver":"hogbom"}`), Dataset: DatasetFacts{SizeGB: 5, ExtendedEmission: true}}, Warn, "multiscale", 0.85},
		{"low seed", Request{Agent: "anomaly", Params: json.RawMessage(`{"seed_sigma":3.5,"flood_sigma":3}`), Dataset: DatasetFacts{SizeGB: 1}}, Warn, "233 false detections per million", 0.85},
		{"self reference", Request{Agent: "anomaly", Params: json.RawMessage(`{"reference_dataset_id":"d1"}`), Dataset: DatasetFacts{ID: "d1"}}, Reject, "is the dataset itself", 0},
		{"wall time", Request{Agent: "imaging", GPUs: 1, Dataset: DatasetFacts{SizeGB: 100, MaxSeconds: 600}}, Reject, "exceeds the wall-time limit", 0},
		{"too many GPUs", Request{Agent: "anomaly", GPUs: 16, Dataset: DatasetFacts{SizeGB: 10}}, Warn, "16 GPUs give only", 0.85},
		{"no flagging on RFI", Request{Agent: "alphacal", Params: json.RawMessage(`{"flagger":"none"}`), Dataset: DatasetFacts{SizeGB: 10, RFIFraction: 0.2}}, Warn, "20% RFI", 0.85},
	}
	for _, c := range cases {
		adv, err := a.Rules(c.req)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if adv.Verdict != c.verdict || adv.Source != SourceRules {
			t.Errorf("%s: verdict %s from %s, want %s from rules; feedback %q", c.name, adv.Verdict, adv.Source, c.verdict, adv.Feedback)
		}
		if !strings.Contains(strings.Join(adv.Feedback, " | "), c.mention) {
			t.Errorf("%s: feedback %q does not mention %q", c.name, adv.Feedback, c.mention)
		}
		if math.Abs(adv.Score-c.score) > 1e-9 {
			t.Errorf("%s: score %v, want %v", c.name, adv.Score, c.score)
		}
	}
}

// The duration follows the descriptors' Amdahl model: alphacal is 120 s
// for 10 GB on one GPU with parallel fraction 0.8, so 4 GPUs take
// 120·(0.2 + 0.8/4) = 48 s and 25 GB on 1 GPU takes 300 s.
func TestRulesEstimate(t *testing.T) {
	a := rulesOnly(t)
	for _, c := range []struct {
		gpus int
		gb   float64
		want float64
	}{{4, 10, 48}, {1, 25, 300}, {0, 0, 120}} {
		adv, err := a.Rules(Request{Agent: "alphacal", GPUs: c.gpus, Dataset: DatasetFacts{SizeGB: c.gb}})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(adv.EstimatedSeconds-c.want) > 1e-6 {
			t.Errorf("%d GPUs, %v GB: estimate %v s, want %v", c.gpus, c.gb, adv.EstimatedSeconds, c.want)
		}
	}
}

func TestRulesBadRequest(t *testing.T) {
	a := rulesOnly(t)
	for _, req := range []Request{{Agent: " "}, {Agent: "alphacal", Dataset: DatasetFacts{SizeGB: math.NaN()}}, {Agent: "alphacal", Dataset: DatasetFacts{RFIFraction: 2}}} {
		if _, err := a.Advise(context.Background(), req); !errors.Is(err, ErrBadAdviceRequest) {
			t.Errorf("%+v: err = %v, want ErrBadAdviceRequest", req, err)
		}
	}
	if _, err := NewAdvisor(&AdvisorConfig{MaxEstimateFactor: 0.5}); !errors.Is(err, ErrConfig) {
		t.Errorf("MaxEstimateFactor 0.5: err = %v", err)
	}
}

// llmAdvisor returns an advisor whose fake Ollama answers content (as the
// chat message) or runs handle.
func llmAdvisor(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) (*Advisor, *fakeOllama) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) { handle(w, r) })
	a, err := NewAdvisor(&AdvisorConfig{Client: f.client(t, Config{RetryMax: 1}), Model: "llama3.2", Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return a, f
}

func answer(content string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"model": "llama3.2:latest", "message": map[string]any{"role": "assistant", "content": content}, "done": true})
	}
}

func TestAdvisorUsesValidLLMAnswer(t *testing.T) {
	a, f := llmAdvisor(t, answer(`{"verdict":"warn","score":0.6,"feedback":["robust 1.0 suits VLASS; consider 0.5 for sharper beams"],"estimated_seconds":200}`))
	adv, err := a.Advise(context.Background(), Request{Agent: "imaging", GPUs: 1, Dataset: DatasetFacts{SizeGB: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if adv.Source != SourceOllama || adv.Verdict != Warn || adv.Score != 0.6 || adv.EstimatedSeconds != 200 || adv.FallbackReason != "" || adv.Model != "llama3.2:latest" {
		t.Errorf("advice = %+v", adv)
	}
	if len(adv.Params) == 0 || f.calls["/api/chat"].Load() != 1 {
		t.Errorf("params %s, chat calls %d", adv.Params, f.calls["/api/chat"].Load())
	}
}

func TestAdvisorFallsBack(t *testing.T) {
	req := Request{Agent: "imaging", GPUs: 1, Dataset: DatasetFacts{SizeGB: 10}}
	cases := []struct {
		name   string
		handle func(w http.ResponseWriter, r *http.Request)
		reason string
	}{
		{"server error", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 500, map[string]any{"error": "CUDA out of memory"})
		}, "CUDA out of memory"},
		{"model missing", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 404, map[string]any{"error": "model 'llama3.2' not found"})
		}, "not found"},
		{"slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, "did not answer within 200ms"},
		{"not JSON", answer(`Sure! The parameters look fine.`), "not JSON"},
		{"score out of range", answer(`{"verdict":"approve","score":7,"feedback":["ok"],"estimated_seconds":300}`), "$.score = 7: must be <= 1"},
		{"unknown verdict", answer(`{"verdict":"maybe","score":0.5,"feedback":["ok"],"estimated_seconds":300}`), "$.verdict"},
		{"missing field", answer(`{"verdict":"approve","score":0.5,"feedback":["ok"]}`), "estimated_seconds is missing"},
		{"extra field", answer(`{"verdict":"approve","score":0.5,"feedback":["ok"],"estimated_seconds":300,"mood":"great"}`), "$.mood"},
		{"empty feedback", answer(`{"verdict":"approve","score":0.5,"feedback":[],"estimated_seconds":300}`), "at least 1 items"},
		{"absurd estimate", answer(`{"verdict":"approve","score":0.9,"feedback":["fast"],"estimated_seconds":1}`), "more than 10x away"},
	}
	rules, err := rulesOnly(t).Rules(req)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, _ := llmAdvisor(t, c.handle)
			adv, err := a.Advise(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if adv.Source != SourceRules || !strings.Contains(adv.FallbackReason, c.reason) {
				t.Errorf("source %s, reason %q, want rules with %q", adv.Source, adv.FallbackReason, c.reason)
			}
			if adv.Verdict != rules.Verdict || adv.EstimatedSeconds != rules.EstimatedSeconds || adv.Score != rules.Score {
				t.Errorf("fallback %+v differs from the rules' %+v", adv, rules)
			}
		})
	}
}

func TestAdvisorRejectSkipsLLM(t *testing.T) {
	a, f := llmAdvisor(t, answer(`{"verdict":"approve","score":1,"feedback":["looks great"],"estimated_seconds":100}`))
	adv, err := a.Advise(context.Background(), Request{Agent: "imaging", Params: json.RawMessage(`{"gain":5}`)})
	if err != nil {
		t.Fatal(err)
	}
	if adv.Verdict != Reject || adv.Source != SourceRules || !strings.Contains(adv.FallbackReason, "not consulted") {
		t.Errorf("advice = %+v", adv)
	}
	if !strings.Contains(adv.Feedback[0], "gain") {
		t.Errorf("feedback %q does not name the parameter", adv.Feedback)
	}
	if n := f.calls["/api/chat"].Load(); n != 0 {
		t.Errorf("Ollama was called %d times for a rejected job", n)
	}
}

func TestSchemaValidator(t *testing.T) {
	good := `{"verdict":"reject","score":0,"feedback":["a"],"estimated_seconds":0}`
	if _, err := AdviceSchema.ValidateJSON([]byte(good)); err != nil {
		t.Errorf("valid answer rejected: %v", err)
	}
	for doc, want := range map[string]string{
		`[]`: "must be an object",
		`{"verdict":"approve","score":"high","feedback":["a"],"estimated_seconds":1}`: `$.score = "high": must be a finite number`,
		`{"verdict":"approve","score":0.5,"feedback":[""],"estimated_seconds":1}`:     "$.feedback[0]",
		`{"verdict":"approve","score":0.5,"feedback":["a"],"estimated_seconds":-3}`:   "must be >= 0",
		`{"verdict":"approve","score":0.5,"feedback":["a"],"estimated_seconds":1} {}`: "trailing data",
	} {
		_, err := AdviceSchema.ValidateJSON([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to mention %q", doc, err, want)
		}
	}
}
