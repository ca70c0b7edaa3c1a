package local_test

import (
	"context"
	"fmt"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/local"
)

// Run an agent in-process and follow it to completion.
func Example() {
	reg := &agents.Registry{}
	_ = reg.Register(agents.New(agents.Descriptor{Name: "count-sources"}.WithRun(
		func(ctx context.Context, in agents.Input, progress agents.ProgressFunc) (agents.Output, error) {
			progress(50, "halfway")
			return agents.Output{Summary: "3 sources in " + in.DatasetID, Metrics: map[string]float64{"sources": 3}}, nil
		})))
	b, err := local.Open(&local.Config{Agents: reg, Workers: 2}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	ctx := context.Background()
	h, err := b.Submit(ctx, backends.Task{ID: "job-1", Agent: "count-sources", DatasetID: "VLASS2.1.T10t01"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for {
		st, err := b.Status(ctx, h)
		if err != nil {
			fmt.Println(err)
			return
		}
		if st.State.Terminal() {
			fmt.Println(st.State, st.Progress, st.Message)
			fmt.Println(string(st.Result))
			break
		}
		time.Sleep(time.Millisecond)
	}
	// Output:
	// COMPLETED 100 3 sources in VLASS2.1.T10t01
	// {"summary":"3 sources in VLASS2.1.T10t01","metrics":{"sources":3}}
}
