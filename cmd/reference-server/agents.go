package main

import (
	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/agents/alphacal"
	"github.com/cosmic-horizons/horizons/agents/anomaly"
	"github.com/cosmic-horizons/horizons/agents/imaging"
	"github.com/cosmic-horizons/horizons/agents/pipeline"
)

// serverAgents is the server's agent registry: the three built-in agents
// with their run functions (alphacal, imaging, anomaly) and the
// multi-stage VLASSPipeline (alias "pipeline"). The orchestrator validates
// jobs against it, the local backend runs its agents in-process, and the
// simulated GPU cluster models their run times from the descriptors.
func serverAgents() *agents.Registry {
	r := agents.NewRegistry()
	r.Replace(alphacal.NewAgent())
	r.Replace(imaging.NewAgent())
	r.Replace(anomaly.NewAgent())
	r.Replace(pipeline.NewAgent())
	return r
}
