package agents

import "strings"

// Stage statuses used in stage progress notes.
const (
	StageStarted   = "started"
	StageCompleted = "completed"
)

// StageNote is the progress note a multi-stage agent reports when a stage
// starts or completes: "stage <name> <status>", e.g. "stage imaging
// started". Notes with details inside a running stage append them after a
// colon, "stage imaging started: epoch 2", so that a status polled at any
// moment still names the stage. [ParseStage] reads these notes back, so
// that a scheduler can turn stage changes into events.
func StageNote(name, status string) string { return "stage " + name + " " + status }

// ParseStage extracts the stage name and status from a progress note made
// by [StageNote], with or without a ": detail" suffix ("stage imaging
// started: epoch 2" gives "imaging", "started"), or from a bare detail
// note "stage imaging: gridding" (status ""). ok is false for any other
// note.
func ParseStage(note string) (name, status string, ok bool) {
	rest, found := strings.CutPrefix(note, "stage ")
	if !found {
		return "", "", false
	}
	head, _, _ := strings.Cut(rest, ":")
	f := strings.Fields(head)
	switch {
	case len(f) == 1:
		return f[0], "", true
	case len(f) == 2 && (f[1] == StageStarted || f[1] == StageCompleted):
		return f[0], f[1], true
	}
	return "", "", false
}
