package llm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/cosmic-horizons/horizons/agents/llm"
)

// The rules answer when no Ollama client is configured.
func ExampleAdvisor_Advise_rules() {
	adv, err := llm.NewAdvisor(nil)
	if err != nil {
		panic(err)
	}
	a, err := adv.Advise(context.Background(), llm.Request{
		Agent:   "anomaly",
		Params:  json.RawMessage(`{"seed_sigma": 4, "flood_sigma": 3.5, "reference_dataset_id": "VLASS1.2"}`),
		GPUs:    1,
		Dataset: llm.DatasetFacts{ID: "VLASS2.2", SizeGB: 10},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(a.Verdict, a.Score, a.EstimatedSeconds, a.Source)
	fmt.Println(a.Feedback[0])
	fmt.Println(a.FallbackReason)
	// Output:
	// warn 0.85 90 rules
	// seed_sigma 4: about 32 false detections per million beams of pure noise (5 sigma: 0.29)
	// no Ollama client configured
}

// With Ollama configured, a schema-valid answer is used; here a fake
// server stands in for Ollama.
func ExampleAdvisor_Advise_ollama() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"model": "llama3.2:latest", "done": true,
			"message": map[string]any{"role": "assistant",
				"content": `{"verdict":"approve","score":0.9,"feedback":["defaults suit VLASS quick-look data"],"estimated_seconds":240}`},
		})
	}))
	defer srv.Close()
	client, err := llm.NewClient(&llm.Config{BaseURL: srv.URL})
	if err != nil {
		panic(err)
	}
	adv, err := llm.NewAdvisor(&llm.AdvisorConfig{Client: client})
	if err != nil {
		panic(err)
	}
	a, err := adv.Advise(context.Background(), llm.Request{Agent: "imaging", GPUs: 1, Dataset: llm.DatasetFacts{SizeGB: 10}})
	if err != nil {
		panic(err)
	}
	fmt.Println(a.Verdict, a.Score, a.EstimatedSeconds, a.Source, a.Model)
	fmt.Println(a.Feedback[0])
	// Output:
	// approve 0.9 240 ollama llama3.2:latest
	// defaults suit VLASS quick-look data
}
