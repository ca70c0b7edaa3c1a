package agents

import "strings"

// Stage statuses used in stage progress notes.
const (
	StageStarted   = "started"
	StageCompleted = "completed"
)

// StageNote is the progress note a multi-stage agent reports when a stage
// starts or completes: "stage <name> <status>", e.g. "stage imaging
// started". Detail notes inside a stage read "stage <name>: <detail>".
// [ParseStage] reads either form back, so that a scheduler can turn stage
// changes into events.
func StageNote(name, status string) string { return "stage " + name + " " + status }

// ParseStage extracts the stage name and status from a progress note made
// by [StageNote] ("stage imaging started" gives "imaging", "started") or a
// detail note ("stage imaging: gridding" gives "imaging", ""). ok is false
// for any other note.
func ParseStage(note string) (name, status string, ok bool) {
	rest, found := strings.CutPrefix(note, "stage ")
	if !found || rest == "" {
		return "", "", false
	}
	if i := strings.Index(rest, ":"); i >= 0 {
		name = strings.TrimSpace(rest[:i])
		if name == "" || strings.ContainsAny(name, " \t") {
			return "", "", false
		}
		return name, "", true
	}
	f := strings.Fields(rest)
	if len(f) != 2 || (f[1] != StageStarted && f[1] != StageCompleted) {
		return "", "", false
	}
	return f[0], f[1], true
}
