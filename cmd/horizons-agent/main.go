// Command horizons-agent is the agent runner a batch job executes on a
// compute node: it reads a task spec, runs the named agent, writes the
// agent's outputs into a work directory and a result file the backend
// collects (backends/slurm reads WorkDir/horizons-<job id>.result.json).
//
// Usage:
//
//	horizons-agent run --result FILE [--task FILE] [--workdir DIR] [--progress FILE]
//	horizons-agent agents
//
// The task spec is a backends.Task as JSON, read from the environment
// variable HORIZONS_TASK (what the Slurm backend sets) or from --task FILE.
// The agent is looked up by name or alias among the runnable agents
// (alphacal, image-reconstruction, anomaly-detection); its parameters are
// validated before it runs.
//
// Files:
//
//   - --result FILE: on success the agent's output (agents.Output as JSON:
//     summary, metrics, result, artifacts); on failure {"error": "..."}.
//     Written atomically (temporary file and rename).
//   - --workdir DIR: where the agent writes its artifacts; default the
//     result file's name without ".result.json" plus ".d" (for
//     horizons-42.result.json: horizons-42.d).
//   - --progress FILE: the latest progress as {"percent": p, "note": n},
//     replaced atomically as the agent reports; default the result file's
//     name with ".progress.json" in place of ".result.json".
//
// Exit status: 0 when the agent completed, 1 when it failed (or was
// interrupted by SIGTERM or SIGINT, as Slurm sends at cancel and at the time
// limit), 2 for a bad command line or task spec.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/agents/alphacal"
	"github.com/cosmic-horizons/horizons/agents/anomaly"
	"github.com/cosmic-horizons/horizons/agents/imaging"
	"github.com/cosmic-horizons/horizons/agents/pipeline"
	"github.com/cosmic-horizons/horizons/backends"
)

// EnvTask is the environment variable holding the task spec as JSON.
const EnvTask = "HORIZONS_TASK"

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Registry returns the agents this runner can run: the built-in
// descriptors with their run functions attached.
func Registry() *agents.Registry {
	r := agents.NewRegistry()
	r.Replace(alphacal.NewAgent())
	r.Replace(imaging.NewAgent())
	r.Replace(anomaly.NewAgent())
	r.Replace(pipeline.NewAgent())
	return r
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprintf(stderr, "usage: horizons-agent run --result FILE [--task FILE] [--workdir DIR] [--progress FILE]\n"+
			"       horizons-agent agents\n"+
			"The task spec (JSON) comes from $%s unless --task is given.\n", EnvTask)
	}
	if len(args) == 0 {
		usage()
		return exitUsage
	}
	switch args[0] {
	case "agents":
		for _, n := range Registry().Names() {
			fmt.Fprintln(stdout, n)
		}
		return exitOK
	case "run":
	case "-h", "-help", "--help", "help":
		usage()
		return exitOK
	default:
		fmt.Fprintf(stderr, "horizons-agent: unknown command %q\n", args[0])
		usage()
		return exitUsage
	}
	fs := flag.NewFlagSet("horizons-agent run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	resultPath := fs.String("result", "", "file the result is written to (required)")
	taskPath := fs.String("task", "", "file holding the task spec as JSON; default $"+EnvTask)
	workDir := fs.String("workdir", "", "directory for the agent's artifacts; default <result>.d")
	progressPath := fs.String("progress", "", "file the latest progress is written to; default <result>.progress.json")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "horizons-agent: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if *resultPath == "" {
		fmt.Fprintln(stderr, "horizons-agent: flag --result is required")
		return exitUsage
	}
	stem := strings.TrimSuffix(*resultPath, ".result.json")
	if stem == *resultPath {
		stem = strings.TrimSuffix(*resultPath, filepath.Ext(*resultPath))
	}
	if *workDir == "" {
		*workDir = stem + ".d"
	}
	if *progressPath == "" {
		*progressPath = stem + ".progress.json"
	}
	task, err := readTask(*taskPath, getenv)
	if err != nil {
		fmt.Fprintln(stderr, "horizons-agent:", err)
		_ = writeJSON(*resultPath, map[string]string{"error": err.Error()})
		return exitUsage
	}
	res := Run(ctx, task, Options{WorkDir: *workDir, ProgressFile: *progressPath, Log: stderr})
	if err := writeJSON(*resultPath, res.doc()); err != nil {
		fmt.Fprintln(stderr, "horizons-agent:", err)
		return exitFailed
	}
	if res.Err != nil {
		fmt.Fprintln(stderr, "horizons-agent:", res.Err)
		if res.Usage {
			return exitUsage
		}
		return exitFailed
	}
	fmt.Fprintf(stderr, "horizons-agent: task %s: %s completed: %s\n", task.ID, task.Agent, res.Output.Summary)
	return exitOK
}

// readTask decodes the task spec from path or, when path is empty, from
// $HORIZONS_TASK, and checks the fields every backend needs.
func readTask(path string, getenv func(string) string) (backends.Task, error) {
	var raw []byte
	src := "$" + EnvTask
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return backends.Task{}, fmt.Errorf("task spec: %w", err)
		}
		raw, src = b, path
	} else {
		raw = []byte(getenv(EnvTask))
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return backends.Task{}, fmt.Errorf("task spec: %s is empty; give the task as JSON in $%s or with --task FILE", src, EnvTask)
	}
	var t backends.Task
	if err := json.Unmarshal(raw, &t); err != nil {
		return backends.Task{}, fmt.Errorf("task spec in %s is not a task as JSON: %v", src, err)
	}
	if err := t.Validate(); err != nil {
		return backends.Task{}, fmt.Errorf("task spec in %s: %w", src, err)
	}
	return t, nil
}

// Options configure Run.
type Options struct {
	// Registry holds the runnable agents; nil means Registry().
	Registry *agents.Registry
	// WorkDir receives the agent's artifacts; empty means none are
	// written.
	WorkDir string
	// ProgressFile, when set, is replaced with the latest progress.
	ProgressFile string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Result is the outcome of one run.
type Result struct {
	Output agents.Output
	Err    error
	// Usage reports that the task itself was unusable (unknown agent,
	// bad parameters), not that the agent failed.
	Usage bool
}

func (r Result) doc() any {
	if r.Err != nil {
		return map[string]string{"error": r.Err.Error()}
	}
	return r.Output
}

// Run runs task's agent. The seed is derived from the task id, as the
// local backend does, so a task gives the same synthetic data anywhere.
func Run(ctx context.Context, task backends.Task, o Options) Result {
	reg := o.Registry
	if reg == nil {
		reg = Registry()
	}
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	ag, err := reg.Lookup(task.Agent)
	if err != nil {
		return Result{Err: fmt.Errorf("task %s: field agent is %q: %w", task.ID, task.Agent, err), Usage: true}
	}
	if ag.Descriptor().Run == nil {
		return Result{Err: fmt.Errorf("task %s: agent %q cannot run in this binary: %w", task.ID, task.Agent, agents.ErrNotRunnable), Usage: true}
	}
	params, err := ag.ValidateParams(task.Params)
	if err != nil {
		return Result{Err: fmt.Errorf("task %s: field params: %w", task.ID, err), Usage: true}
	}
	if o.WorkDir != "" {
		if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
			return Result{Err: fmt.Errorf("task %s: work directory: %w", task.ID, err)}
		}
	}
	h := fnv.New64a()
	h.Write([]byte(task.ID))
	in := agents.Input{JobID: task.ID, DatasetID: task.DatasetID, Params: params, GPUs: task.GPUs, WorkDir: o.WorkDir, Seed: int64(h.Sum64() >> 1)}
	last := -1.0
	lastWrite, lastNote := time.Time{}, ""
	progress := func(p float64, note string) {
		if math.IsNaN(p) {
			return
		}
		p = math.Min(math.Max(p, 0), 100)
		if p < last {
			return
		}
		last = p
		fmt.Fprintf(log, "progress %.1f%% %s\n", p, note)
		// At most ten writes a second (the backend polls far less often),
		// but every new stage note ("stage imaging started") is written.
		_, _, stage := agents.ParseStage(note)
		if o.ProgressFile != "" && (time.Since(lastWrite) > 100*time.Millisecond || p == 100 || (stage && note != lastNote)) {
			lastWrite, lastNote = time.Now(), note
			_ = writeJSON(o.ProgressFile, map[string]any{"percent": p, "note": note})
		}
	}
	out, err := safeRun(ctx, ag, in, progress)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		return Result{Err: fmt.Errorf("task %s: agent %s failed: %w", task.ID, ag.Name(), err)}
	}
	if o.ProgressFile != "" {
		_ = writeJSON(o.ProgressFile, map[string]any{"percent": 100, "note": "completed"})
	}
	return Result{Output: out}
}

func safeRun(ctx context.Context, a agents.Agent, in agents.Input, progress agents.ProgressFunc) (out agents.Output, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("agent %s panicked: %v", a.Name(), r)
		}
	}()
	return a.Run(ctx, in, progress)
}

// writeJSON replaces path with v as JSON, through a temporary file and a
// rename so a reader never sees half a file.
func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
