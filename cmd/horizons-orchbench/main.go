// Command horizons-orchbench measures the orchestrator at scale and prints
// the figures side by side:
//
//   - jobs submitted and completed through the in-memory store and the
//     simulated GPU cluster in one run (-n, default 20000; -n 1000000 for
//     the million-job run), with peak RSS (VmHWM) and RSS samples along the
//     run, which stay flat because the store and the cluster keep a bounded
//     number of finished jobs;
//   - jobs/s submitted and completed on PostgreSQL (-pg, default
//     HORIZONS_POSTGRES_URL or the local test database) with one and with
//     two orchestrator replicas sharing the database;
//   - River (riverqueue/river, the anchor) inserting and working the same
//     number of trivial jobs on the same database in the same run.
//
// Every PostgreSQL run uses a fresh schema that is dropped afterwards.
//
//	go run ./cmd/horizons-orchbench                 # quick: 20k in memory, 2k on PostgreSQL
//	go run ./cmd/horizons-orchbench -n 1000000      # the million-job run
//	go run ./cmd/horizons-orchbench -pg ""          # in memory only
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/simgpu"
	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/membus"
	"github.com/cosmic-horizons/horizons/orchestrator"
	"github.com/cosmic-horizons/horizons/orchestrator/memstore"
	"github.com/cosmic-horizons/horizons/orchestrator/sqlstore"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "horizons-orchbench:", err)
		os.Exit(1)
	}
}

type options struct {
	n, window, pgN, riverWorkers, submitters int
	pg                                       string
	river                                    bool
}

// result is one row of the report.
type result struct {
	name    string
	jobs    int
	elapsed time.Duration
	note    string
}

func (r result) rate() float64 { return float64(r.jobs) / r.elapsed.Seconds() }

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("horizons-orchbench", flag.ContinueOnError)
	var o options
	def := os.Getenv("HORIZONS_POSTGRES_URL")
	if def == "" {
		def = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	fs.IntVar(&o.n, "n", 20000, "jobs for the in-memory run")
	fs.IntVar(&o.window, "window", 4000, "most jobs in flight at once in the in-memory run")
	fs.StringVar(&o.pg, "pg", def, "PostgreSQL URL for the PostgreSQL and River runs; empty skips them (default HORIZONS_POSTGRES_URL)")
	fs.IntVar(&o.pgN, "pg-n", 2000, "jobs for each PostgreSQL run")
	fs.BoolVar(&o.river, "river", true, "also run River on the same database")
	fs.IntVar(&o.riverWorkers, "river-workers", 100, "River workers")
	fs.IntVar(&o.submitters, "submitters", 8, "goroutines submitting jobs concurrently")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile to this file after the in-memory run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if o.n < 1 || o.pgN < 1 || o.window < 1 {
		return fmt.Errorf("-n, -pg-n and -window must be at least 1 (got %d, %d, %d)", o.n, o.pgN, o.window)
	}
	ctx := context.Background()
	var rows []result

	fmt.Fprintf(out, "in-memory: %d jobs through memstore + simgpu, at most %d in flight\n", o.n, o.window)
	memProfilePath = *memProfile
	r, samples, err := memRun(ctx, o)
	if err != nil {
		return err
	}
	rows = append(rows, r)
	fmt.Fprintf(out, "  RSS along the run (MiB): %s\n", samples)

	if o.pg != "" {
		for _, replicas := range []int{1, 2} {
			fmt.Fprintf(out, "postgres: %d jobs, %d replica(s)\n", o.pgN, replicas)
			r, err := pgRun(ctx, o, replicas)
			if err != nil {
				return err
			}
			rows = append(rows, r)
		}
		if o.river {
			fmt.Fprintf(out, "river: %d trivial jobs, %d workers\n", o.pgN, o.riverWorkers)
			r, err := riverRun(ctx, o)
			if err != nil {
				if errors.Is(err, errNoRiver) {
					fmt.Fprintln(out, "  skipped:", err)
				} else {
					return err
				}
			} else {
				rows = append(rows, r)
			}
		}
	}

	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "run\tjobs\tseconds\tjobs/s\tvs first row\tnotes")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.0f\t%.2fx\t%s\n", r.name, r.jobs, r.elapsed.Seconds(), r.rate(), r.rate()/rows[0].rate(), r.note)
	}
	fmt.Fprintf(tw, "peak RSS (VmHWM)\t\t\t\t\t%s\n", vm("VmHWM"))
	return tw.Flush()
}

// vm reads a field of /proc/self/status, e.g. VmHWM (peak RSS).
func vm(field string) string {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "n/a"
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, field+":") {
			return strings.TrimSpace(strings.TrimPrefix(line, field+":"))
		}
	}
	return "n/a"
}

func rssMiB() float64 {
	f := strings.Fields(vm("VmRSS"))
	if len(f) == 0 {
		return 0
	}
	kb, _ := strconv.ParseFloat(f[0], 64)
	return kb / 1024
}

// counting wraps a store and counts jobs reaching a final state.
type counting struct {
	orchestrator.Store
	done atomic.Int64
}

func (c *counting) UpdateJob(ctx context.Context, j *orchestrator.Job, prev int64, evs []events.Event) error {
	err := c.Store.UpdateJob(ctx, j, prev, evs)
	if err == nil && j.State.Terminal() {
		c.done.Add(1)
	}
	return err
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func cluster(nodes int) (*backends.Backend, error) {
	return simgpu.Open(&simgpu.Config{
		Nodes: nodes, GPUsPerNode: 8, SpeedUp: 1e6, RetainFinished: 10000, HistoryLimit: 8,
		DatasetGB: func(string) float64 { return 1 }, Logger: quiet(),
	}, &backends.Options{Logger: quiet()})
}

func orchConfig(b *backends.Backend, replica string) *orchestrator.Config {
	return &orchestrator.Config{
		Backends: []*backends.Backend{b}, Logger: quiet(), ReplicaID: replica,
		PollInterval: 5 * time.Millisecond, ScheduleInterval: 5 * time.Millisecond, OutboxInterval: 5 * time.Millisecond,
		MaxQueued: 1 << 30,
	}
}

var spec = orchestrator.Spec{Agent: "alphacal", DatasetID: "vlass/bench", GPUs: 1}

// drive submits n jobs through subs (round robin) keeping at most window
// in flight, and waits until done reports n finished jobs.
func drive(ctx context.Context, n, window, submitters int, subs []*orchestrator.Orchestrator, done func() int64, tick func(i int)) (time.Duration, error) {
	start := time.Now()
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		subErr  error
		tickMu  sync.Mutex
	)
	for range max(submitters, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				for int64(i)-done() >= int64(window) {
					time.Sleep(200 * time.Microsecond)
				}
				if _, _, err := subs[i%len(subs)].Submit(ctx, "bench", spec); err != nil {
					errOnce.Do(func() { subErr = fmt.Errorf("submit job %d: %w", i, err) })
					next.Store(int64(n))
					return
				}
				if tick != nil {
					tickMu.Lock()
					tick(i)
					tickMu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if subErr != nil {
		return 0, subErr
	}
	deadline := time.Now().Add(10 * time.Minute)
	for done() < int64(n) {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("only %d of %d jobs finished in 10 minutes", done(), n)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start), nil
}

func memRun(ctx context.Context, o options) (result, string, error) {
	b, err := cluster(512)
	if err != nil {
		return result{}, "", err
	}
	store := &counting{Store: memstore.New(&memstore.Config{RetainFinished: 5000})}
	bus := membus.NewBus(nil)
	defer bus.Close()
	orc, err := orchestrator.New(store, bus, orchConfig(b, "bench"))
	if err != nil {
		return result{}, "", err
	}
	if err := orc.Start(ctx); err != nil {
		return result{}, "", err
	}
	defer orc.Stop(ctx)
	var samples []string
	step := max(o.n/10, 1)
	el, err := drive(ctx, o.n, o.window, o.submitters, []*orchestrator.Orchestrator{orc}, func() int64 { return store.done.Load() }, func(i int) {
		if memProfilePath != "" && i+1 == o.n*9/10 {
			writeHeap(memProfilePath)
		}
		if (i+1)%step == 0 {
			fmt.Fprintf(os.Stderr, "  %d submitted, %d finished, RSS %.0f MiB\n", i+1, store.done.Load(), rssMiB())
			samples = append(samples, fmt.Sprintf("%.0f", rssMiB()))
		}
	})
	if err != nil {
		return result{}, "", err
	}
	return result{name: "memstore + simgpu", jobs: o.n, elapsed: el, note: "RSS now " + fmt.Sprintf("%.0f MiB", rssMiB())}, strings.Join(samples, " "), nil
}

// schema creates a fresh schema and returns a DSN using it and a drop
// function.
func schema(ctx context.Context, base, prefix string) (string, string, func(), error) {
	db, err := sql.Open("pgx", base)
	if err != nil {
		return "", "", nil, err
	}
	name := prefix + "_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:10]
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
		db.Close()
		return "", "", nil, fmt.Errorf("create schema on %s: %w", redact(base), err)
	}
	u, err := url.Parse(base)
	if err != nil {
		db.Close()
		return "", "", nil, fmt.Errorf("-pg is not a URL")
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String(), name, func() {
		db.ExecContext(context.Background(), "DROP SCHEMA IF EXISTS "+name+" CASCADE")
		db.Close()
	}, nil
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func pgRun(ctx context.Context, o options, replicas int) (result, error) {
	dsn, _, drop, err := schema(ctx, o.pg, "orchbench")
	if err != nil {
		return result{}, err
	}
	defer drop()
	b, err := cluster(512)
	if err != nil {
		return result{}, err
	}
	bus := membus.NewBus(nil)
	defer bus.Close()
	var (
		orcs   []*orchestrator.Orchestrator
		stores []*counting
	)
	for i := range replicas {
		s, err := sqlstore.Open(ctx, sqlstore.Config{Driver: "pgx", DSN: dsn})
		if err != nil {
			return result{}, fmt.Errorf("open store on %s: %w", redact(o.pg), err)
		}
		defer s.Close()
		c := &counting{Store: s}
		orc, err := orchestrator.New(c, bus, orchConfig(b, fmt.Sprintf("replica-%d", i+1)))
		if err != nil {
			return result{}, err
		}
		if err := orc.Start(ctx); err != nil {
			return result{}, err
		}
		defer orc.Stop(ctx)
		orcs = append(orcs, orc)
		stores = append(stores, c)
	}
	done := func() int64 {
		var n int64
		for _, s := range stores {
			n += s.done.Load()
		}
		return n
	}
	el, err := drive(ctx, o.pgN, o.pgN, o.submitters, orcs, done, nil)
	if err != nil {
		return result{}, err
	}
	note := ""
	if replicas > 1 {
		var parts []string
		for i, s := range stores {
			parts = append(parts, fmt.Sprintf("replica-%d finished %d", i+1, s.done.Load()))
		}
		note = strings.Join(parts, ", ")
	}
	return result{name: fmt.Sprintf("postgres, %d replica(s)", replicas), jobs: o.pgN, elapsed: el, note: note}, nil
}

// memProfilePath is where memRun writes a heap profile at 90% of the run.
var memProfilePath string

func writeHeap(path string) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "memprofile:", err)
		return
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "memprofile:", err)
	}
}
