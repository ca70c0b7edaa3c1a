// Command horizons-eventbench measures the event system on each transport
// and prints the figures side by side in one run:
//
//   - throughput: events/s from publish to handler through the SDK (Bus
//     validation and encoding, NewRouter's middleware, a typed handler)
//     against raw watermill on the same transport with the same settings,
//     and their ratio (events/bustest.BenchPath; best and median of -runs
//     runs, alternating the two sides);
//   - with -latency, the submit → notification latency through the whole
//     reference server (REST submit to the job.submitted event on the
//     owner's WebSocket), p50 and p99, from BenchmarkSubmitToWebSocket in
//     cmd/reference-server (run with go test from the module root).
//
// Kafka runs on an in-process broker (kfake); RabbitMQ and PostgreSQL are
// the live servers of -amqp and -postgres (or HORIZONS_AMQP_URL and
// HORIZONS_POSTGRES_URL) and are skipped when they do not answer.
//
//	go run ./cmd/horizons-eventbench -latency
package main

import (
	"bufio"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"

	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cosmic-horizons/horizons/events/amqpbus"
	"github.com/cosmic-horizons/horizons/events/bustest"
	"github.com/cosmic-horizons/horizons/events/kafkabus"
	"github.com/cosmic-horizons/horizons/events/membus"
	"github.com/cosmic-horizons/horizons/events/sqlbus"
)

type transport struct {
	name  string
	setup func() (bustest.BenchConstructor, func(), error)
}

func main() {
	testing.Init()
	names := flag.String("transports", "mem,kafka,amqp,postgres", "comma-separated transports to measure")
	amqpURL := flag.String("amqp", envOr("HORIZONS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"), "RabbitMQ URL (env HORIZONS_AMQP_URL)")
	pgURL := flag.String("postgres", envOr("HORIZONS_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=3"), "PostgreSQL URL (env HORIZONS_POSTGRES_URL)")
	publishers := flag.Int("publishers", 1, "publishing goroutines (each owns its jobs, so per-job order holds)")
	runs := flag.Int("runs", 3, "runs per side; the median is printed")
	benchtime := flag.String("benchtime", "5000x", "events per run (Nx) or a duration; a fixed count measures both sides on the same work")
	latency := flag.Bool("latency", false, "also measure submit → WebSocket latency through the reference server (runs go test)")
	latencyN := flag.Int("latency-n", 200, "submissions per transport for -latency")
	flag.Parse()
	if err := flag.Set("test.benchtime", *benchtime); err != nil {
		fail(fmt.Errorf("-benchtime %q: %v", *benchtime, err))
	}
	if *runs < 1 || *publishers < 1 {
		fail(fmt.Errorf("-runs %d and -publishers %d must be at least 1", *runs, *publishers))
	}
	all := map[string]transport{
		"mem":      {"mem", memSetup},
		"kafka":    {"kafka", kafkaSetup},
		"amqp":     {"amqp", func() (bustest.BenchConstructor, func(), error) { return amqpSetup(*amqpURL) }},
		"postgres": {"postgres", func() (bustest.BenchConstructor, func(), error) { return pgSetup(*pgURL) }},
	}
	var order []string
	for _, n := range strings.Split(*names, ",") {
		n = strings.TrimSpace(n)
		if _, ok := all[n]; !ok {
			fail(fmt.Errorf("-transports: unknown transport %q (want mem, kafka, amqp, postgres)", n))
		}
		order = append(order, n)
	}
	var lat map[string][2]float64
	if *latency {
		var err error
		if lat, err = measureLatency(order, *latencyN); err != nil {
			fmt.Fprintln(os.Stderr, "latency:", err)
		}
	}
	fmt.Printf("events/s from publish to handler, best and median of %d runs of %s each, %d publisher(s); GOMAXPROCS=%s\n"+
		"(on a shared machine other load only slows a run down, so the best run is the better estimate)\n\n",
		*runs, *benchtime, *publishers, envOr("GOMAXPROCS", "default"))
	fmt.Printf("%-9s %12s %12s %8s %12s %12s %8s", "transport", "raw best", "sdk best", "sdk/raw", "raw median", "sdk median", "sdk/raw")
	if *latency {
		fmt.Printf(" %14s %14s", "submit→ws p50", "submit→ws p99")
	}
	fmt.Println()
	for _, n := range order {
		ctor, cleanup, err := all[n].setup()
		if err != nil {
			fmt.Printf("%-9s skipped: %v\n", n, err)
			continue
		}
		var raw, sdk []float64
		for r := 0; r < *runs; r++ { // alternate, so drift hits both sides
			raw = append(raw, measure(ctor, *publishers, false))
			sdk = append(sdk, measure(ctor, *publishers, true))
		}
		cleanup()
		br, bs := slices.Max(raw), slices.Max(sdk)
		mr, ms := median(raw), median(sdk)
		fmt.Printf("%-9s %12.0f %12.0f %8.3f %12.0f %12.0f %8.3f", n, br, bs, bs/br, mr, ms, ms/mr)
		if *latency {
			if l, ok := lat[n]; ok {
				fmt.Printf(" %11.2f ms %11.2f ms", l[0], l[1])
			} else {
				fmt.Printf(" %14s %14s", "-", "-")
			}
		}
		fmt.Println()
	}
}

func measure(ctor bustest.BenchConstructor, publishers int, sdk bool) float64 {
	res := testing.Benchmark(func(b *testing.B) { bustest.BenchPath(b, ctor, publishers, sdk) })
	return res.Extra["events/s"]
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "horizons-eventbench:", err)
	os.Exit(2)
}

func memSetup() (bustest.BenchConstructor, func(), error) {
	return func(b *testing.B) (message.Publisher, message.Subscriber) {
		tr := membus.New(nil)
		return tr, tr
	}, func() {}, nil
}

func kafkaSetup() (bustest.BenchConstructor, func(), error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(8))
	if err != nil {
		return nil, nil, err
	}
	fast := func(c *sarama.Config) {
		c.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
		c.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
		c.Metadata.Retry.Backoff = 100 * time.Millisecond
	}
	return func(b *testing.B) (message.Publisher, message.Subscriber) {
		tr, err := kafkabus.New(c.ListenAddrs(), &kafkabus.Config{ConsumerGroup: "bench-" + uuid.NewString(), Sarama: fast})
		if err != nil {
			b.Fatal(err)
		}
		return tr.Publisher(), tr.Subscriber()
	}, c.Close, nil
}

func amqpSetup(u string) (bustest.BenchConstructor, func(), error) {
	tr, err := amqpbus.New(u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("RabbitMQ unreachable: %v", err)
	}
	_ = tr.Close()
	return func(b *testing.B) (message.Publisher, message.Subscriber) {
		tr, err := amqpbus.New(u, &amqpbus.Config{ConsumerGroup: "bench", QueueExpiry: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		return tr.Publisher(), tr.Subscriber()
	}, func() {}, nil
}

func pgSetup(dsn string) (bustest.BenchConstructor, func(), error) {
	db, err := sql.Open("pgx", dsn)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("PostgreSQL unreachable: %v", err)
	}
	before := benchTables(db)
	return func(b *testing.B) (message.Publisher, message.Subscriber) {
			tr, err := sqlbus.New(db, &sqlbus.Config{Dialect: sqlbus.Postgres, ConsumerGroup: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			return tr.Publisher(), tr.Subscriber()
		}, func() {
			// Drop the tables this run created, and no one else's.
			for t := range benchTables(db) {
				if !before[t] {
					_, _ = db.Exec(`DROP TABLE IF EXISTS "` + t + `"`)
				}
			}
			_ = db.Close()
		}, nil
}

func benchTables(db *sql.DB) map[string]bool {
	out := map[string]bool{}
	rows, err := db.Query(`SELECT tablename FROM pg_tables WHERE tablename LIKE 'watermill_%bench_%'`)
	if err != nil {
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil {
			out[n] = true
		}
	}
	return out
}

var latLine = regexp.MustCompile(`^BenchmarkSubmitToWebSocket/(\w+)-\d+\s+\d+\s+\d+ ns/op\s+([\d.]+) p50-ms\s+([\d.]+) p99-ms`)

// measureLatency runs BenchmarkSubmitToWebSocket with go test from the
// module root and returns p50 and p99 in ms per transport.
func measureLatency(order []string, n int) (map[string][2]float64, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
		return nil, fmt.Errorf("run from inside the module (go env GOMOD: %v)", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	pattern := "BenchmarkSubmitToWebSocket/^(" + strings.Join(order, "|") + ")$"
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", pattern, "-benchtime", strconv.Itoa(n)+"x", "./cmd/reference-server")
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	res := map[string][2]float64{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := latLine.FindStringSubmatch(sc.Text()); m != nil {
			p50, _ := strconv.ParseFloat(m[2], 64)
			p99, _ := strconv.ParseFloat(m[3], 64)
			res[m[1]] = [2]float64{p50, p99}
		}
	}
	_, _ = io.Copy(io.Discard, out)
	return res, cmd.Wait()
}
