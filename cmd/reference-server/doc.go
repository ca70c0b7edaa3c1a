// Command reference-server runs the Cosmic Horizons platform: the job
// orchestrator with its SQLite store, the in-memory event bus, a simulated
// GPU cluster, bearer-token users, a JSON REST API, live job events over
// WebSocket and Server-Sent Events, the ephemeris REST endpoints, Prometheus
// metrics and a small dashboard.
//
//	go run ./cmd/reference-server
//
// starts it on embedded defaults with nothing else installed.
//
// # Configuration
//
// Every flag has an environment variable; a flag overrides its variable, a
// variable overrides the default.
//
//	-addr              HORIZONS_ADDR              listen address (127.0.0.1:8080)
//	-data              HORIZONS_DATA_DIR          data directory (./horizons-data)
//	-sim-speedup       HORIZONS_SIM_SPEEDUP       simulated cluster speed-up (30: a typical job takes about 10 s)
//	-sim-nodes         HORIZONS_SIM_NODES         simulated nodes (4)
//	-sim-gpus          HORIZONS_SIM_GPUS          simulated GPUs per node (4)
//	-sim-seed          HORIZONS_SIM_SEED          simulator seed (1)
//	-sim-failure-rate  HORIZONS_SIM_FAILURE_RATE  probability a simulated task fails (0)
//	-log-level         HORIZONS_LOG_LEVEL         debug, info, warn or error (info)
//	-events            HORIZONS_EVENTS            event transport: mem:// (default), kafka://host:port[,host:port],
//	                                              amqp://user@host:port/vhost, postgres://user@host:port/db,
//	                                              sqlite://path; password in the URL or HORIZONS_EVENTS_PASSWORD
//	                                              (never logged); topic_prefix= prefixes every topic
//	-events-retry      HORIZONS_EVENTS_RETRY      consumers' retry ladder before the dead-letter topic, e.g.
//	                                              retries=5,initial=1s,multiplier=2,max=30s,jitter=0.2,retries.audit=10
//	-stream-conns-per-user HORIZONS_STREAM_CONNS_PER_USER  WebSocket/SSE connections per user (32)
//	-allowed-origins   HORIZONS_ALLOWED_ORIGINS   extra Origin patterns allowed to open streams
//	-aladin-url        HORIZONS_ALADIN_URL        where the dashboard loads Aladin Lite (GPL-3, never vendored);
//	                                              empty: the sky view draws its own plot
//	-sky-survey        HORIZONS_SKY_SURVEY        HiPS id of the sky view (NRAO/P/VLASS-Quicklook-MedianStack;
//	                                              P/DSS2/color is the fallback survey)
//	-snapshot-retention HORIZONS_SNAPSHOT_RETENTION how long sky view snapshots are kept (720h)
//	-backend           HORIZONS_BACKEND           compute backend: sim (default), local or slurm (backends.go)
//	-local-workers     HORIZONS_LOCAL_WORKERS     tasks -backend local runs at once (one per CPU)
//	-slurm-url         HORIZONS_SLURM_URL         slurmrestd URL; -slurm-user HORIZONS_SLURM_USER the job owner;
//	                                              the JWT from HORIZONS_SLURM_TOKEN or -slurm-token-file
//	                                              (HORIZONS_SLURM_TOKEN_FILE, re-read when it changes), never a flag
//	-slurm-partition   HORIZONS_SLURM_PARTITION   partition (the cluster's default)
//	-slurm-workdir     HORIZONS_SLURM_WORKDIR     job working directory on the cluster (<data>/slurm-work)
//	-slurm-runner      HORIZONS_SLURM_RUNNER      agent runner command (horizons-agent run; cmd/horizons-agent)
//	-slurm-api-version HORIZONS_SLURM_API_VERSION v0.0.38, v0.0.41 or auto (auto)
//	-slurm-gpus        HORIZONS_SLURM_GPUS        most GPUs per task (0: the most a node of the partition has)
//
// With -backend slurm the server checks the settings at start-up and refuses
// to start when slurmrestd cannot be reached, the token is rejected or the
// partition does not exist; scripts/slurm-cluster.sh starts a single-node
// cluster and prints the HORIZONS_SLURM_* variables.
//
// The data directory holds jobs.db (jobs, their events and the outbox) and
// auth.db (users and SHA-256 hashes of their tokens).
//
// # Authentication
//
// Every /api/v1 endpoint except the ephemeris needs "Authorization: Bearer
// <token>". HORIZONS_ADMIN_TOKEN (at least 16 characters) sets the token of
// the user "admin". Without it, the first start generates an admin token and
// prints it once to standard output; only its hash is kept. The admin creates
// users with POST /api/v1/users and receives each new token once. A user sees
// only their own jobs and events; an admin sees everyone's. WebSocket and SSE
// clients, which cannot always set headers, may pass the token as ?token=.
//
// # API
//
//	POST /api/v1/users                {"name","role"} -> 201 {"id","name","role","token"} (admin)
//	POST /api/v1/jobs                 {"agent","dataset_id","gpus","params","priority","idempotency_key"}
//	                                  (header X-Correlation-ID optional) -> 201 job; a repeated
//	                                  idempotency key -> 200 and the first job
//	GET  /api/v1/jobs/{id}            -> job
//	GET  /api/v1/jobs?state=&limit=&cursor=  -> {"jobs":[...],"next_cursor":""}
//	POST /api/v1/jobs/{id}/cancel     optional {"reason"} -> 200 job, 409 when already finished
//	GET  /api/v1/jobs/{id}/events     -> {"events":[...]} in sequence order
//	POST /api/v1/workflows            {"name","description","failure_policy","inputs","steps"} -> 201
//	                                  version 1; 400 names the step and field (cycle, unknown agent)
//	GET  /api/v1/workflows            -> {"workflows":[...]} each with its current definition
//	POST /api/v1/workflows/{name}/versions  definition -> 201, the new version is current (owner/admin)
//	POST /api/v1/workflows/{name}/rollback  {"version"} -> 200, that version is current (owner/admin)
//	POST /api/v1/workflow-runs        {"workflow","version","inputs"} -> 201 run (pinned version);
//	                                  the built-in "vlass-pipeline" needs inputs.dataset_id
//	GET  /api/v1/workflow-runs[/{id}] -> runs / one run with its steps, jobs and outputs
//	GET  /api/v1/workflow-runs/{id}/events  -> {"events":[...]} workflow.* in sequence order
//	POST /api/v1/workflow-runs/{id}/cancel  optional {"reason"} -> 200 run, 409 when finished
//	GET  /api/v1/ws                   WebSocket: one JSON event envelope per message; ?job= and
//	                                  ?workflow= (repeatable) narrow it; ?epoch=&offset= resume
//	GET  /api/v1/events/stream        the same as Server-Sent Events (id = epoch:offset, event
//	                                  type, data); Last-Event-ID resumes
//	GET  /api/v1/ephemeris/...        ephemeris endpoints (public)
//	GET  /healthz, /readyz, /metrics  probes and Prometheus metrics (/readyz also probes the event
//	                                  transport)
//	GET  /api/v1/admin/dead-letters   ?topic=&handler=&job_id=&limit=&after= -> {"dead_letters":[...],"next"}
//	GET  /api/v1/admin/dead-letters/{id}        -> one dead letter with payload, metadata and event
//	POST /api/v1/admin/dead-letters/{id}/replay -> back to its origin topic
//	GET  /api/v1/admin/audit          ?job_id=&from=&limit= -> {"records":[{seq,event,prev_hash,hash}]}
//	POST /api/v1/admin/audit/verify   -> {"ok","records","first_bad","problem","detail","head"}
//	POST /api/v1/admin/replay         {"job_id","consumer":"audit"|"notifications"|"metrics","after"} -> job
//	                                  history from the store, in order, to that consumer; or {"from","to",
//	                                  "consumer"} -> the events of a time range, from the audit chain
//	GET  /api/v1/admin/events/health  -> the system.health report (also published every 30 s)
//	                                  (admin endpoints: 403 for other users)
//	GET  /openapi.json                OpenAPI 3 document of this API (TestOpenAPI validates
//	                                  real responses against it)
//	GET  /api/v1/dashboard/config     {"aladin_url","hips","hips_fallback"} (public)
//	GET  /api/v1/cluster/usage        per-GPU utilisation of every backend that reports it
//	GET|POST /api/v1/jobs/{id}/annotations  notes pinned to sky positions {"ra_deg","dec_deg",
//	                                  "detection","text"}; the job's owner and admins
//	DELETE /api/v1/annotations/{id}   its author or an admin
//	GET|POST /api/v1/jobs/{id}/snapshots    PNG snapshots of the sky view (image/png, 2 MiB,
//	                                  4096 px a side, newest 50 per job, -snapshot-retention)
//	GET  /api/v1/snapshots/{id}       the PNG
//	GET  /                            dashboard: live job table and form, job detail (timeline,
//	                                  outputs, sky plot, notes, snapshots), workflows (runs and a
//	                                  DAG builder), sky view (Aladin Lite or its own plot),
//	                                  cluster (GPU heatmap, charts from /metrics), admin
//
// A job is rendered as id, owner, agent, dataset_id, gpus, params, priority,
// state, progress (0–100), attempts, correlation_id, backend, error,
// created_at, updated_at, started_at and finished_at; times are RFC 3339 in
// UTC, and unset times are null. Errors are {"error":{"code","message",
// "field"}} with status 400 (field names the offending field; unknown fields
// are rejected), 401, 403, 404 (also for another user's job), 409, 413
// (bodies over 1 MiB), 429 (queue full) or 503.
//
// # Live streams
//
// WebSocket and SSE clients share one hub. Every message carries its stream
// position, "stream":{"epoch","offset"}; the first message of a stream is a
// {"type":"stream.connected"} notice with the current position. A client that
// reconnects with its last position (?epoch=&offset=, or Last-Event-ID
// "epoch:offset" for SSE, which EventSource sends by itself) first receives
// the messages it missed, in order, from a window of the last 8192; when its
// position is older than that window or from an earlier server start it gets
// a {"type":"stream.resync"} notice instead and should reload over REST. A
// client more than 256 messages behind is disconnected (WebSocket close 1013)
// and may resume. A browser Origin other than the server's own host needs
// -allowed-origins. The server pings every 25 s and closes a WebSocket that
// does not answer within 8 s. One user may hold -stream-conns-per-user
// streams (429 beyond). ?workflow= takes a workflow run id and brings its
// workflow.* events and its steps' job events. cmd/horizons-wsload measures
// all of this with thousands of connections.
//
// # Shutdown
//
// On SIGINT or SIGTERM the server stops accepting connections, closes the
// stream clients, drains requests, stops the orchestrator (forwarding what
// its outbox still holds) and closes the bus, backends and stores. A job
// left running is resumed from its backend handle, or failed with a reason,
// on the next start.
package main
