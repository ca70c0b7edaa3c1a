// Package tapis is the compute backend that runs tasks as jobs of the TACC
// Tapis v3 Jobs API (https://tapis.readthedocs.io/en/latest/technical/jobs.html).
//
// # Authentication
//
// Every Jobs call carries the header X-Tapis-Token. With Config.Password
// the driver mints the token itself with POST /v3/oauth2/tokens (password
// grant) and mints a new one Config.RefreshBefore ahead of its expiry; when
// the Jobs service still answers 401 (a token revoked or expired early) it
// mints once more and repeats the call. With Config.Token (a JWT minted
// elsewhere) or Config.TokenFunc the caller owns the token. The password
// and the tokens never appear in logs, errors or the String and LogValue of
// Config.
//
// # Calls
//
// Every call goes through github.com/hashicorp/go-retryablehttp with its
// own timeout (Config.CallTimeout). Idempotent calls (GET, cancel, token)
// are retried Config.RetryMax times with exponential backoff on connection
// errors and 5xx answers. A submit, which Tapis does not de-duplicate, is
// retried that way only when the connection was never made or a gateway
// answered 502, 503 or 504 (the request did not reach the Jobs service);
// after a 500 or a lost answer the driver looks for the job by its name
// (horizons-<task id>) among the newest jobs and sends the submit once
// more only when Tapis has none. Submit also looks first, so a task
// submitted again after the caller restarted gets its job back. 4xx
// answers are never retried. Every answer's envelope (status, message, version,
// result) is decoded; a failure becomes an [*APIError] that wraps a backends
// sentinel: 401 and 403 ErrUnauthorized, 404 ErrTaskNotFound, 400 on submit
// ErrInvalidTask, 5xx and unreachable servers ErrUnavailable. Its message
// carries Tapis's own message and what to do.
//
// # Submitting
//
// A task becomes a ReqSubmitJob for Config.AppID and Config.AppVersion (an
// application whose command is the agent runner horizons-agent) on
// Config.ExecSystemID: name horizons-<task id>, one node, memoryMB from
// the task, maxMinutes from its wall time (rounded up), GPUs as the
// scheduler option Config.GPUArg (default --gres=gpu:N), the app arguments
// "run --result horizons.result.json" (Config.ResultFile, relative to the
// job's output directory), and the environment variables HORIZONS_TASK (the
// task as JSON, without its Env), HORIZONS_TASK_ID, HORIZONS_RESULT_FILE,
// plus Config.Env and the task's Env.
//
// # States
//
// All 13 Tapis job states map onto backends task states ([State]):
// PENDING, PROCESSING_INPUTS, STAGING_INPUTS, STAGING_JOB, SUBMITTING_JOB and
// QUEUED are pending; RUNNING and ARCHIVING are running; BLOCKED and PAUSED
// are running once the remote job started and pending before; FINISHED is
// completed; CANCELLED is cancelled; FAILED is failed, or timeout when the
// condition is SCHEDULER_TIMEOUT. Progress follows the stages (0 % pending,
// up to 10 % while staging, 90 % archiving, 100 % finished); while the job
// runs it is 10 % plus 80 % of what the runner reports in its progress file
// (horizons.progress.json, read with allowIfRunning). A finished job's
// result is the runner's result file, downloaded from the job outputs; a
// failed job's message ends with the runner's error from that file. The
// driver keeps both in memory once read.
//
// Capacity counts this backend's jobs among the user's newest 500 (GET
// /v3/jobs/list) and reuses the count for Config.CapacityTTL unless a
// submit, a cancel or a state change seen by Status happened since.
//
// Tapis holds the jobs, so [Driver.Recover] works after a restart of this
// process. [Driver.History], [Driver.Outputs] and [Driver.Download] expose
// the job history and outputs.
//
// The package backends/tapis/tapistest is an httptest server that emulates
// Tapis and checks every request and response against the OpenAPI
// documents of the Jobs and Authenticator services.
package tapis
