// Package slurm is the compute backend that runs tasks as Slurm batch jobs
// through slurmrestd, Slurm's REST API.
//
// Every call goes through github.com/hashicorp/go-retryablehttp: connection
// errors, 502/503/504 and the 500 that slurmrestd returns while slurmctld is
// down are retried (Config.RetryMax times with exponential backoff); a 4xx
// and any other 5xx are not. A submit (POST) is never repeated blindly:
// after a retryable failure the driver first looks for a job with the
// task's name, which a request whose answer was lost has created, and
// sends the submit again only when there is none. Each call has its own
// timeout (Config.CallTimeout). Requests carry the JWT headers X-SLURM-USER-NAME and
// X-SLURM-USER-TOKEN; Config.TokenFunc is called before each request so a
// caller can refresh an expiring token. The token never appears in logs or
// errors.
//
// # API versions
//
// Config.APIVersion selects the OpenAPI plugin, or "auto" to read the
// server's /openapi/v3 document on first use ([Driver.Detect]): v0.0.38 (Slurm 22.05, as
// Debian 12 ships it; tested against recorded responses of a real 22.05
// cluster) or v0.0.41 (Slurm 24.05; request bodies checked against the
// published OpenAPI document, responses decoded from shapes that document
// declares, not yet from a live server). v0.0.38: job_state is a string,
// exit_code a raw wait(2) status (exit 3 arrives as 768, a job killed by
// signal 9 as 9), the environment a non-empty object, many scalars null.
// v0.0.41: the script inside the job, job_state an array of flags,
// exit_code an object with return_code and signal, numbers as
// {set, infinite, number} structs, the environment a list of K=V, GPUs as
// tres_per_node. [Job] decodes either generation.
//
// # Submitting
//
// Submit turns a task into a batch script that runs Config.Command (the
// agent runner) with the task as JSON in the environment variable
// HORIZONS_TASK, in Config.WorkDir on the cluster, with the partition, GPUs
// (gres gpu:N), memory per node and time limit (whole minutes, rounded up)
// of the task. Standard output goes to WorkDir/horizons-<job id>.out.
// The runner (cmd/horizons-agent) writes WorkDir/horizons-<job id>.result.json
// (the agent's output, or {"error": ...}) and keeps
// WorkDir/horizons-<job id>.progress.json up to date; when WorkDir is
// visible to this process (a shared filesystem or a single-node cluster)
// Status reports that progress while the job runs (at most 99 % until it
// completes), the result on completion and the runner's error on failure.
// Jobs are named Config.JobPrefix + task id; Capacity counts only those,
// and Submit looks for a job of that name first, so submitting a task id
// twice (a caller that crashed before storing the handle) returns the
// first job (Config.NoDuplicateCheck turns the look-up off).
//
// [Driver.Verify] checks a configuration against the cluster at start-up:
// slurmrestd answers, the token is accepted, the partition exists; it
// reports the GPUs of the partition's nodes (from their gres).
//
// scripts/slurm-cluster.sh starts a single-node Slurm 22.05 cluster with
// slurmrestd for the live tests (live_test.go): the backendtest suite, a
// job that completes, one that exits 3, one cancelled, one killed at its
// time limit, and the agent runner on synthetic data.
//
// # States and errors
//
// Slurm job states map onto backends task states: PENDING, CONFIGURING,
// REQUEUED, SUSPENDED… are PENDING; RUNNING, COMPLETING, SIGNALING,
// STAGE_OUT are RUNNING; COMPLETED; FAILED, NODE_FAIL, BOOT_FAIL,
// OUT_OF_MEMORY, DEADLINE, PREEMPTED are FAILED with a message naming the
// state, the reason and the exit code or signal; CANCELLED; TIMEOUT.
// Slurm knows nothing of progress: a task reports 0 % until it ends and
// 100 % when it completes.
//
// slurmrestd answers most errors with HTTP 500 and an errors array whose
// number field is error_number, error_code or errno. They map onto the
// backends sentinels: 401 and rejected tokens to ErrUnauthorized, "Invalid
// job id" (2017, also what a job purged MinJobAge after it ended gives) to
// ErrTaskNotFound, an invalid partition (2000) to ErrInvalidTask naming the
// partition, a controller that cannot be reached to ErrUnavailable.
//
// Slurm holds the jobs, so Recover works after a restart of this process,
// until slurmctld purges the finished job (MinJobAge, 300 s by default).
package slurm
