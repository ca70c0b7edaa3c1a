package tapis_test

import (
	"fmt"
	"time"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/tapis"
)

// The Tapis job request Submit sends for a task.
func ExampleDriver_JobRequest() {
	d, err := tapis.New(&tapis.Config{
		Tenant: "tacc", Username: "horizons", Password: "from-the-environment",
		AppID: "horizons-agent", AppVersion: "1.0", ExecSystemID: "frontera", MaxGPUs: 4,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	req, err := d.JobRequest(backends.Task{ID: "job-7-1", Agent: "alphacal", DatasetID: "VLASS2.1.T10t01", GPUs: 2, WallTime: 2 * time.Hour})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(d.Config().URL)
	fmt.Println(req.Name, req.AppID, req.AppVersion, req.ExecSystemID, req.MaxMinutes)
	fmt.Println(req.ParameterSet.AppArgs[0].Arg)
	fmt.Println(req.ParameterSet.SchedulerOptions[0].Arg)
	for _, kv := range req.ParameterSet.EnvVariables {
		fmt.Printf("%s=%s\n", kv.Key, kv.Value)
	}
	// Output:
	// https://tacc.tapis.io
	// horizons-job-7-1 horizons-agent 1.0 frontera 120
	// run --result horizons.result.json
	// --gres=gpu:2
	// HORIZONS_RESULT_FILE=horizons.result.json
	// HORIZONS_TASK={"id":"job-7-1","agent":"alphacal","dataset_id":"VLASS2.1.T10t01","gpus":2,"memory_mb":0,"wall_time":7200000000000}
	// HORIZONS_TASK_ID=job-7-1
}

// Every Tapis job status maps onto a task state; BLOCKED and PAUSED depend
// on whether the remote job had started.
func ExampleState() {
	for _, s := range tapis.Statuses {
		fmt.Println(s, tapis.State(s, "", false), tapis.State(s, "", true))
	}
	fmt.Println("FAILED/SCHEDULER_TIMEOUT", tapis.State("FAILED", "SCHEDULER_TIMEOUT", true))
	// Output:
	// PENDING PENDING PENDING
	// PROCESSING_INPUTS PENDING PENDING
	// STAGING_INPUTS PENDING PENDING
	// STAGING_JOB PENDING PENDING
	// SUBMITTING_JOB PENDING PENDING
	// QUEUED PENDING PENDING
	// RUNNING RUNNING RUNNING
	// ARCHIVING RUNNING RUNNING
	// BLOCKED PENDING RUNNING
	// PAUSED PENDING RUNNING
	// FINISHED COMPLETED COMPLETED
	// CANCELLED CANCELLED CANCELLED
	// FAILED FAILED FAILED
	// FAILED/SCHEDULER_TIMEOUT TIMEOUT
}
