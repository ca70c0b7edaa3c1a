// Package horizons is the root of the Cosmic Horizons SDK: a control plane for
// AI agents that process radio-astronomy survey data (the VLA Sky Survey) on
// GPU and HPC compute. The root package holds documentation only.
//
// # How the packages fit
//
//   - orchestrator: jobs, their validation and state machine, the scheduler,
//     retries, wall-time limits and the transactional outbox. Stores live in
//     orchestrator/memstore and orchestrator/sqlstore. Versioned DAG
//     workflows of jobs run on top of it in orchestrator/workflow.
//   - events: the event envelope and catalogue, codecs and the Bus over any
//     watermill transport (events/membus, kafkabus, amqpbus, sqlbus).
//   - agents: the Agent interface and registry; the algorithms live in
//     agents/alphacal, agents/imaging and agents/anomaly.
//   - backends: where tasks run (backends/simgpu, local, slurm, tapis).
//   - ephemeris: observation-planning astronomy at the VLA.
//
// Drivers are injected: the orchestrator sees only the portable types, so a
// binary compiles in only the transports and backends it imports.
//
// # End to end
//
//	store, _ := sqlstore.Open(ctx, sqlstore.Config{DSN: "jobs.db"})
//	bus := membus.NewBus(nil)
//	gpu, _ := simgpu.Open(&simgpu.Config{SpeedUp: 360}, nil)
//	o, _ := orchestrator.New(store, bus, &orchestrator.Config{Backends: []*backends.Backend{gpu}})
//	_ = o.Start(ctx)
//	job, _, _ := o.Submit(ctx, "alice", orchestrator.Spec{Agent: "alphacal", DatasetID: "vlass/T01", GPUs: 1})
//	evs, _ := o.Watch(ctx, job.ID) // job.queued, job.running, job.progress..., job.completed
//
// See the Example functions of each package for runnable versions.
package horizons
