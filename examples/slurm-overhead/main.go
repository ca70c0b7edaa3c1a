// Command slurm-overhead measures what running an agent as a Slurm batch
// job costs against running it in-process, and prints the figures side by
// side with the ratio to the in-process baseline:
//
//   - local: the local backend runs the agent in this process (baseline);
//   - slurm dispatch: a Slurm job whose runner is `true` (scheduling,
//     slurmd launch and slurmrestd polling only);
//   - slurm + runner: a Slurm job that runs cmd/horizons-agent, which runs
//     the same agent on the same synthetic dataset.
//
// It needs a cluster: eval "$(scripts/slurm-cluster.sh start)" sets the
// HORIZONS_SLURM_* variables it reads. The runner is built with `go build`
// into a temporary directory unless -runner names one.
//
//	go run ./examples/slurm-overhead [-tasks 4] [-agent alphacal] [-runs 2]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/agents/alphacal"
	"github.com/cosmic-horizons/horizons/agents/anomaly"
	"github.com/cosmic-horizons/horizons/agents/imaging"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/local"
	"github.com/cosmic-horizons/horizons/backends/slurm"
)

type outcome struct {
	wall    time.Duration // first submit to last completion
	latency []time.Duration
}

func (o outcome) median() time.Duration {
	l := append([]time.Duration(nil), o.latency...)
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	return l[len(l)/2]
}

func main() {
	n := flag.Int("tasks", 4, "tasks per backend, submitted at once")
	agent := flag.String("agent", agents.NameAlphaCal, "agent to run")
	runs := flag.Int("runs", 2, "runs per backend; the fastest counts")
	runner := flag.String("runner", "", "horizons-agent binary; default: go build it")
	flag.Parse()
	if err := mainErr(*n, *agent, *runs, *runner); err != nil {
		fmt.Fprintln(os.Stderr, "slurm-overhead:", err)
		os.Exit(1)
	}
}

func mainErr(n int, agent string, runs int, runner string) error {
	url, user, partition := os.Getenv("HORIZONS_SLURM_URL"), os.Getenv("HORIZONS_SLURM_USER"), os.Getenv("HORIZONS_SLURM_PARTITION")
	if url == "" {
		return fmt.Errorf(`HORIZONS_SLURM_URL is not set: start a cluster with eval "$(scripts/slurm-cluster.sh start)"`)
	}
	if user == "" {
		user = "root"
	}
	token := os.Getenv("HORIZONS_SLURM_TOKEN")
	if token == "" {
		b, err := os.ReadFile(os.Getenv("HORIZONS_SLURM_TOKEN_FILE"))
		if err != nil {
			return fmt.Errorf("no HORIZONS_SLURM_TOKEN and HORIZONS_SLURM_TOKEN_FILE: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	work, err := os.MkdirTemp("", "slurm-overhead-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	os.Chmod(work, 0o777)
	if runner == "" {
		runner = filepath.Join(work, "horizons-agent")
		if out, err := exec.Command("go", "build", "-o", runner, "github.com/cosmic-horizons/horizons/cmd/horizons-agent").CombinedOutput(); err != nil {
			return fmt.Errorf("go build horizons-agent: %v\n%s", err, out)
		}
	}
	reg := agents.NewRegistry()
	reg.Replace(alphacal.NewAgent())
	reg.Replace(imaging.NewAgent())
	reg.Replace(anomaly.NewAgent())
	a, err := reg.Lookup(agent)
	if err != nil {
		return err
	}
	openSlurm := func(command string) (*backends.Backend, error) {
		return slurm.Open(&slurm.Config{URL: url, UserName: user, Token: token, Partition: partition, WorkDir: work,
			Command: command, JobPrefix: fmt.Sprintf("hzbench%d-", time.Now().UnixNano()), MaxWallTime: time.Hour,
			Agents: []string{a.Name()}}, nil)
	}
	type cfg struct {
		name string
		open func() (*backends.Backend, error)
	}
	cfgs := []cfg{
		{"local (in-process)", func() (*backends.Backend, error) {
			return local.Open(&local.Config{Agents: reg}, nil)
		}},
		{"slurm dispatch (runner true)", func() (*backends.Backend, error) { return openSlurm("true") }},
		{"slurm + horizons-agent", func() (*backends.Backend, error) { return openSlurm(runner + " run") }},
	}
	fmt.Printf("%d x %s, submitted at once\n", n, a.Name())
	fmt.Printf("%-30s %10s %7s %14s %7s\n", "backend", "wall", "ratio", "median task", "ratio")
	var base outcome
	for i, c := range cfgs {
		var best outcome
		for r := range max(runs, 1) {
			b, err := c.open()
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			o, err := measure(b, a.Name(), n, fmt.Sprintf("%d-%d", i, r))
			b.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			if best.wall == 0 || o.wall < best.wall {
				best = o
			}
		}
		if i == 0 {
			base = best
		}
		fmt.Printf("%-30s %10s %6.1fx %14s %6.1fx\n", c.name, best.wall.Round(time.Millisecond),
			float64(best.wall)/float64(base.wall), best.median().Round(time.Millisecond),
			float64(best.median())/float64(base.median()))
	}
	return nil
}

// measure submits n tasks at once and polls every 20 ms until all are
// done.
func measure(b *backends.Backend, agent string, n int, tag string) (outcome, error) {
	ctx := context.Background()
	start := time.Now()
	hs := make([]backends.Handle, n)
	sub := make([]time.Time, n)
	for i := range n {
		sub[i] = time.Now()
		h, err := b.Submit(ctx, backends.Task{ID: fmt.Sprintf("ovh-%s-%d", tag, i), Agent: agent, DatasetID: fmt.Sprintf("VLASS2.1.sb%d", i)})
		if err != nil {
			return outcome{}, err
		}
		hs[i] = h
	}
	o := outcome{latency: make([]time.Duration, n)}
	left := n
	for left > 0 {
		for i, h := range hs {
			if o.latency[i] != 0 {
				continue
			}
			st, err := b.Status(ctx, h)
			if err != nil {
				return outcome{}, err
			}
			if st.State.Terminal() {
				if st.State != backends.TaskCompleted {
					return outcome{}, fmt.Errorf("task %s ended %s: %s", h.ExternalID, st.State, st.Message)
				}
				o.latency[i] = time.Since(sub[i])
				left--
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	o.wall = time.Since(start)
	return o, nil
}
