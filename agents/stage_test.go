package agents_test

import (
	"testing"

	"github.com/cosmic-horizons/horizons/agents"
)

func TestParseStage(t *testing.T) {
	for _, tc := range []struct {
		note, name, status string
		ok                 bool
	}{
		{agents.StageNote("imaging", agents.StageStarted), "imaging", "started", true},
		{"stage imaging completed", "imaging", "completed", true},
		{"stage imaging started: epoch 2: gridding", "imaging", "started", true},
		{"stage imaging: gridding", "imaging", "", true},
		{"stage imaging finished", "", "", false},
		{"stage ", "", "", false},
		{"stage : x", "", "", false},
		{"stage two words: x", "", "", false},
		{"40% done", "", "", false},
		{"", "", "", false},
	} {
		name, status, ok := agents.ParseStage(tc.note)
		if name != tc.name || status != tc.status || ok != tc.ok {
			t.Errorf("ParseStage(%q) = %q, %q, %v; want %q, %q, %v", tc.note, name, status, ok, tc.name, tc.status, tc.ok)
		}
	}
}
