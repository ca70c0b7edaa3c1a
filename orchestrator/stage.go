package orchestrator

import (
	"strings"

	"github.com/cosmic-horizons/horizons/agents"
)

// stageChange decides whether a running task's status note announces a
// pipeline stage (agents.StageNote: "stage <name> started" or "stage
// <name> completed", or a detail "stage <name>: ..." of a stage not yet
// announced) that differs from the last one announced for the job. It
// returns the stage name for data.stage of the job.progress event (empty
// when there is nothing new) and the key to remember once the event is
// stored. The monitor polls, so a stage shorter than the poll interval
// may go unannounced; the next one is announced all the same.
func (o *Orchestrator) stageChange(jobID, note string) (stage, key string) {
	name, status, ok := agents.ParseStage(note)
	if !ok {
		return "", ""
	}
	key = name + " " + status
	last := ""
	if v, ok := o.stages.Load(jobID); ok {
		last, _ = v.(string)
	}
	lastName, _, _ := strings.Cut(last, " ")
	if (status != "" && key != last) || name != lastName {
		return name, key
	}
	return "", ""
}
