package slurm_test

import (
	"fmt"
	"time"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/slurm"
)

// The batch script and job properties Submit sends for a task.
func ExampleDriver_BatchScript() {
	d, err := slurm.New(&slurm.Config{
		URL: "http://127.0.0.1:6820", UserName: "horizons", Token: "from-scontrol-token",
		WorkDir: "/scratch/horizons", Partition: "gpu", MaxGPUs: 4,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	script, _, err := d.BatchScript(backends.Task{ID: "job-7-1", Agent: "alphacal", DatasetID: "VLASS2.1.T10t01", GPUs: 2, WallTime: 2 * time.Hour})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(script)
	// Output:
	// #!/bin/bash
	// # Cosmic Horizons task 'job-7-1': agent 'alphacal', dataset 'VLASS2.1.T10t01'
	// set -eu
	// exec horizons-agent run --result '/scratch/horizons'/horizons-"${SLURM_JOB_ID}".result.json
}

// Slurm reports exit_code as a raw wait status.
func ExampleWaitStatus() {
	for _, raw := range []int{0, 768, 9} {
		exit, signal := slurm.WaitStatus(raw)
		fmt.Println(raw, "->", exit, signal)
	}
	// Output:
	// 0 -> 0 0
	// 768 -> 3 0
	// 9 -> 137 9
}

// GresGPUs reads the GPU count from a node's generic resources, as
// Driver.Verify does for the partition's nodes.
func ExampleGresGPUs() {
	fmt.Println(slurm.GresGPUs("gpu:4"))
	fmt.Println(slurm.GresGPUs("gpu:a100:2(S:0),gpu:v100:1,shard:8"))
	// Output:
	// 4
	// 3
}
