// Command horizons-wsload measures the reference server's live channels
// under load: it opens N concurrent WebSocket connections to
// /api/v1/ws, submits jobs, and reports
//
//   - the delivery latency of job events to all connections (p50, p99,
//     max; from the event's time to its arrival), and the fan-out spread
//     (first to last arrival of one event);
//   - reconnect-and-resume: a share of the connections drop mid-run and
//     reconnect with their last stream position; the time from dialling to
//     the end of the replay, and how many messages were replayed;
//   - messages lost, duplicated or out of order per connection, checked
//     against GET /api/v1/jobs/{id}/events (must all be 0);
//   - how deliberately slow clients (a share that read one message per
//     -slow-delay) fare, and that the others are not slowed.
//
// Start a server that allows enough streams for one user, then point the
// command at it:
//
//	HORIZONS_ADMIN_TOKEN=load-test-token-0123456789 HORIZONS_STREAM_CONNS_PER_USER=20000 \
//	    go run ./cmd/reference-server -addr 127.0.0.1:8080 -data /tmp/wsload -sim-speedup 300 &
//	go run ./cmd/horizons-wsload -url http://127.0.0.1:8080 -token load-test-token-0123456789 -conns 10000
//
// The command raises its RLIMIT_NOFILE to the hard limit; each connection
// needs one descriptor here and one in the server.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) == 3 && os.Args[1] == "-serve-baseline" {
		if err := serveBaseline(os.Args[2], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "horizons-wsload baseline:", err)
			os.Exit(1)
		}
		return
	}
	cfg, err := parseFlags(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "horizons-wsload:", err)
		os.Exit(2)
	}
	rep, err := run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "horizons-wsload:", err)
		os.Exit(1)
	}
	rep.print(os.Stdout)
	if cfg.Baseline {
		interval := time.Duration(0)
		if rep.Events > 1 {
			interval = rep.EventsSpan / time.Duration(rep.Events-1)
		}
		b, err := runBaseline(ctx, cfg, rep.Events, interval, os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "horizons-wsload: baseline:", err)
			os.Exit(1)
		}
		printBaseline(os.Stdout, rep, b, interval)
	}
	if rep.Lost > 0 || rep.Duplicates > 0 || rep.OutOfOrder > 0 || rep.ConnectErrors > 0 {
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	URL        string
	Token      string
	Conns      int
	Slow       float64       // share of slow clients
	SlowDelay  time.Duration // a slow client's pause per message
	Reconnect  float64       // share of fast clients that drop and resume
	Jobs       int
	Agent      string
	DialPar    int
	Timeout    time.Duration
	ResumeGap  time.Duration // how long a reconnecting client stays away
	JobSpacing time.Duration
	Baseline   bool // also measure a bare coder/websocket broadcaster
}

func parseFlags(args []string, getenv func(string) string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("horizons-wsload", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8080", "base URL of the reference server")
	fs.StringVar(&c.Token, "token", "", "bearer token (default: $HORIZONS_TOKEN, else $HORIZONS_ADMIN_TOKEN); an admin token sees every job")
	fs.IntVar(&c.Conns, "conns", 1000, "concurrent WebSocket connections")
	fs.Float64Var(&c.Slow, "slow", 0.05, "share of deliberately slow clients, 0-1")
	fs.DurationVar(&c.SlowDelay, "slow-delay", 200*time.Millisecond, "a slow client's pause after each message")
	fs.Float64Var(&c.Reconnect, "reconnect", 0.1, "share of the fast clients that disconnect mid-run and resume from their last position, 0-1")
	fs.IntVar(&c.Jobs, "jobs", 3, "jobs to submit; their events are the measured messages")
	fs.StringVar(&c.Agent, "agent", "alphacal", "agent of the submitted jobs")
	fs.IntVar(&c.DialPar, "dial-parallel", 64, "connections dialled at once")
	fs.DurationVar(&c.Timeout, "timeout", 5*time.Minute, "give up after this long")
	fs.DurationVar(&c.ResumeGap, "resume-gap", 500*time.Millisecond, "how long a reconnecting client stays away")
	fs.BoolVar(&c.Baseline, "baseline", false, "then measure a bare coder/websocket broadcaster (a child process) with the same clients and event pace, and print ratios side by side")
	fs.DurationVar(&c.JobSpacing, "job-spacing", 300*time.Millisecond, "pause between job submissions")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.Token == "" {
		c.Token = getenv("HORIZONS_TOKEN")
	}
	if c.Token == "" {
		c.Token = getenv("HORIZONS_ADMIN_TOKEN")
	}
	var errs []error
	if c.Token == "" {
		errs = append(errs, errors.New("-token is empty and neither HORIZONS_TOKEN nor HORIZONS_ADMIN_TOKEN is set"))
	}
	if !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://") {
		errs = append(errs, fmt.Errorf("-url = %q: want http:// or https://", c.URL))
	}
	if c.Conns < 1 || c.Conns > 100000 {
		errs = append(errs, fmt.Errorf("-conns = %d: want 1 to 100000", c.Conns))
	}
	if c.Slow < 0 || c.Slow > 1 {
		errs = append(errs, fmt.Errorf("-slow = %v: want 0 to 1", c.Slow))
	}
	if c.Reconnect < 0 || c.Reconnect > 1 {
		errs = append(errs, fmt.Errorf("-reconnect = %v: want 0 to 1", c.Reconnect))
	}
	if c.Jobs < 1 {
		errs = append(errs, fmt.Errorf("-jobs = %d: want at least 1", c.Jobs))
	}
	if c.DialPar < 1 {
		errs = append(errs, fmt.Errorf("-dial-parallel = %d: want at least 1", c.DialPar))
	}
	c.URL = strings.TrimRight(c.URL, "/")
	return c, errors.Join(errs...)
}

// raiseNoFile lifts the soft descriptor limit to the hard one.
func raiseNoFile() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, err
		}
	}
	return l.Cur, nil
}

// message is what the load client reads of a stream message.
type message struct {
	ID       string    `json:"id"`
	Type     string    `json:"type"`
	Subject  string    `json:"subject"`
	Time     time.Time `json:"time"`
	Sequence int64     `json:"sequence"`
	Stream   struct {
		Epoch  string `json:"epoch"`
		Offset uint64 `json:"offset"`
	} `json:"stream"`
	Resumed  bool `json:"resumed"`
	Replayed int  `json:"replayed"`
}

// arrival is one event received by one connection.
type arrival struct {
	id      string
	subject string
	seq     int64
	at      time.Time
	sent    time.Time
	replay  bool // delivered by a resume replay
}

// conn is one load client; everything it saw is checked at the end.
type conn struct {
	mu        sync.Mutex // guards got while the run waits for stragglers
	slow      bool
	reconnect bool
	got       []arrival
	epoch     string
	offset    uint64
	resumes   []time.Duration
	replayed  int
	drops     map[string]int // server closes by reason
	err       error
}

// checker counts, for one connection, the events it lacks, received twice
// or out of order within their job, against want (event ids of every job).
func (c *conn) check(want map[string]bool) (lost, dups, disorder int) {
	seen := map[string]bool{}
	last := map[string]int64{}
	for _, a := range c.got {
		if seen[a.id] {
			dups++
			continue
		}
		seen[a.id] = true
		if a.seq <= last[a.subject] {
			disorder++
		}
		last[a.subject] = a.seq
	}
	for id := range want {
		if !seen[id] {
			lost++
		}
	}
	return lost, dups, disorder
}

// report is the outcome.
type report struct {
	Conns, Slow, Reconnecting int
	NoFile                    uint64
	ConnectTime               time.Duration
	ConnectErrors             int
	Events                    int // distinct events of the jobs
	Delivered                 int // arrivals at fast clients, live
	Latency, SlowLatency      []time.Duration
	Spread                    []time.Duration
	Resume                    []time.Duration
	Replayed                  int
	SlowDropped               int
	Lost, Duplicates          int
	OutOfOrder                int
	Wall                      time.Duration
	EventsSpan                time.Duration // first to last event time
	HeapMB                    uint64
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p / 100 * float64(len(s)-1))
	return s[i]
}

func (r *report) print(w io.Writer) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	fmt.Fprintf(w, "connections        %d (%d slow, %d reconnecting); RLIMIT_NOFILE %d\n", r.Conns, r.Slow, r.Reconnecting, r.NoFile)
	fmt.Fprintf(w, "connect            %s for all (%.0f/s), %d errors\n", r.ConnectTime.Round(time.Millisecond), float64(r.Conns)/r.ConnectTime.Seconds(), r.ConnectErrors)
	fmt.Fprintf(w, "events             %d distinct job events, %d live deliveries to fast clients\n", r.Events, r.Delivered)
	fmt.Fprintf(w, "delivery latency   p50 %s  p99 %s  max %s  (event time -> arrival, fast clients)\n", ms(pct(r.Latency, 50)), ms(pct(r.Latency, 99)), ms(pct(r.Latency, 100)))
	fmt.Fprintf(w, "fan-out spread     p50 %s  p99 %s  max %s  (first -> last fast arrival of one event)\n", ms(pct(r.Spread, 50)), ms(pct(r.Spread, 99)), ms(pct(r.Spread, 100)))
	fmt.Fprintf(w, "reconnect+resume   %d resumes: p50 %s  p99 %s  max %s  (dial -> replay done), %d messages replayed\n", len(r.Resume), ms(pct(r.Resume, 50)), ms(pct(r.Resume, 99)), ms(pct(r.Resume, 100)), r.Replayed)
	fmt.Fprintf(w, "slow clients       latency p50 %s  p99 %s; dropped by the server %d times (resumed)\n", ms(pct(r.SlowLatency, 50)), ms(pct(r.SlowLatency, 99)), r.SlowDropped)
	fmt.Fprintf(w, "messages lost      %d   duplicated %d   out of order %d   (all connections, against GET /events)\n", r.Lost, r.Duplicates, r.OutOfOrder)
	fmt.Fprintf(w, "wall time          %s; client heap %d MB\n", r.Wall.Round(time.Millisecond), r.HeapMB)
}

func run(ctx context.Context, cfg config, log io.Writer) (*report, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	nofile, err := raiseNoFile()
	if err != nil {
		return nil, fmt.Errorf("raise RLIMIT_NOFILE: %w", err)
	}
	if nofile < uint64(cfg.Conns)+64 {
		fmt.Fprintf(log, "warning: RLIMIT_NOFILE is %d, fewer than -conns %d needs\n", nofile, cfg.Conns)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	rep := &report{Conns: cfg.Conns, NoFile: nofile}

	conns := make([]*conn, cfg.Conns)
	nSlow := int(float64(cfg.Conns) * cfg.Slow)
	nRe := int(float64(cfg.Conns-nSlow) * cfg.Reconnect)
	for i := range conns {
		conns[i] = &conn{slow: i < nSlow, reconnect: i >= nSlow && i < nSlow+nRe, drops: map[string]int{}}
	}
	rep.Slow, rep.Reconnecting = nSlow, nRe

	wsURL := "ws" + strings.TrimPrefix(cfg.URL, "http") + "/api/v1/ws"
	hdr := http.Header{"Authorization": {"Bearer " + cfg.Token}}
	dial := func(ctx context.Context, c *conn) (*websocket.Conn, error) {
		u := wsURL
		if c.epoch != "" {
			u += fmt.Sprintf("?epoch=%s&offset=%d", c.epoch, c.offset)
		}
		ws, res, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: hdr, HTTPClient: hc})
		if err != nil {
			if res != nil {
				return nil, fmt.Errorf("dial: %s: %w", res.Status, err)
			}
			return nil, err
		}
		ws.SetReadLimit(1 << 20)
		return ws, nil
	}

	// Phase 1: connect everyone, each reading until the end.
	var (
		wg        sync.WaitGroup
		connected sync.WaitGroup
		connErrs  atomic.Int64
		stopRead  = make(chan struct{})
		dropNow   = make(chan struct{})
	)
	sem := make(chan struct{}, cfg.DialPar)
	connected.Add(len(conns))
	for _, c := range conns {
		wg.Add(1)
		go func(c *conn) {
			defer wg.Done()
			sem <- struct{}{}
			ws, err := dial(ctx, c)
			<-sem
			connected.Done()
			if err != nil {
				connErrs.Add(1)
				c.err = err
				return
			}
			c.read(ctx, ws, cfg, dial, stopRead, dropNow)
		}(c)
	}
	connected.Wait()
	rep.ConnectTime = time.Since(start)
	rep.ConnectErrors = int(connErrs.Load())
	fmt.Fprintf(log, "connected %d in %s (%d errors)\n", cfg.Conns, rep.ConnectTime.Round(time.Millisecond), rep.ConnectErrors)
	if rep.ConnectErrors > 0 {
		for _, c := range conns {
			if c.err != nil {
				fmt.Fprintf(log, "first connect error: %v\n", c.err)
				break
			}
		}
	}

	// Phase 2: submit jobs; drop the reconnecting clients after the
	// first one.
	var ids []string
	for i := 0; i < cfg.Jobs; i++ {
		id, err := submit(ctx, hc, cfg, i)
		if err != nil {
			close(stopRead)
			return nil, err
		}
		ids = append(ids, id)
		if i == 0 {
			close(dropNow)
		}
		time.Sleep(cfg.JobSpacing)
	}
	// Wait for the jobs to finish, then for the clients to catch up.
	want := map[string]bool{}
	for _, id := range ids {
		evs, err := waitDone(ctx, hc, cfg, id)
		if err != nil {
			close(stopRead)
			return nil, err
		}
		for _, e := range evs {
			want[e] = true
		}
	}
	rep.Events = len(want)
	fmt.Fprintf(log, "%d jobs finished with %d events; waiting for every client to receive them\n", len(ids), len(want))
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		behind := 0
		for _, c := range conns {
			if c.count() < len(want) {
				behind++
			}
		}
		if behind == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	close(stopRead)
	wg.Wait()

	// Phase 3: check and summarise.
	first, lastAt := map[string]time.Time{}, map[string]time.Time{}
	for _, c := range conns {
		if c.err != nil && !errors.Is(c.err, errStopped) {
			rep.ConnectErrors++
			fmt.Fprintf(log, "client error: %v\n", c.err)
		}
		l, d, o := c.check(want)
		rep.Lost += l
		rep.Duplicates += d
		rep.OutOfOrder += o
		rep.Resume = append(rep.Resume, c.resumes...)
		rep.Replayed += c.replayed
		if c.slow {
			rep.SlowDropped += c.drops["slow"]
		}
		for _, a := range c.got {
			if !want[a.id] {
				continue
			}
			lat := a.at.Sub(a.sent)
			switch {
			case c.slow:
				rep.SlowLatency = append(rep.SlowLatency, lat)
			case a.replay:
			default:
				rep.Latency = append(rep.Latency, lat)
				rep.Delivered++
				if f, ok := first[a.id]; !ok || a.at.Before(f) {
					first[a.id] = a.at
				}
				if a.at.After(lastAt[a.id]) {
					lastAt[a.id] = a.at
				}
			}
		}
	}
	for id, f := range first {
		rep.Spread = append(rep.Spread, lastAt[id].Sub(f))
	}
	var t0, t1 time.Time
	for _, c := range conns {
		for _, a := range c.got {
			if want[a.id] && (t0.IsZero() || a.sent.Before(t0)) {
				t0 = a.sent
			}
			if want[a.id] && a.sent.After(t1) {
				t1 = a.sent
			}
		}
	}
	rep.EventsSpan = t1.Sub(t0)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rep.HeapMB = ms.HeapAlloc >> 20
	rep.Wall = time.Since(start)
	return rep, nil
}

var errStopped = errors.New("stopped")

// count is how many events c has received so far.
func (c *conn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func (c *conn) add(a arrival) {
	c.mu.Lock()
	c.got = append(c.got, a)
	c.mu.Unlock()
}

// read consumes ws until stop. On a server close it reconnects with the
// last position; a reconnecting client drops its connection once when
// dropNow closes and resumes after -resume-gap. One goroutine per
// connection reads and decodes, as a real client would.
func (c *conn) read(ctx context.Context, ws *websocket.Conn, cfg config, dial func(context.Context, *conn) (*websocket.Conn, error), stop, dropNow <-chan struct{}) {
	var (
		mu      sync.Mutex
		cur     = ws
		stopped atomic.Bool
		dropped atomic.Bool
	)
	// Closing the current connection is how stop and the planned drop
	// reach the blocked Read.
	go func() {
		drop := dropNow
		if !c.reconnect {
			drop = nil
		}
		for {
			select {
			case <-stop:
				stopped.Store(true)
			case <-ctx.Done():
				stopped.Store(true)
			case <-drop:
				drop = nil
				dropped.Store(true)
				mu.Lock()
				cur.CloseNow()
				mu.Unlock()
				continue
			}
			mu.Lock()
			cur.CloseNow()
			mu.Unlock()
			return
		}
	}()
	replaying := false
	var dialStart time.Time
	for {
		_, b, err := ws.Read(ctx)
		now := time.Now()
		if err != nil {
			if stopped.Load() {
				c.err = errStopped
				return
			}
			reason := "client"
			if !dropped.Swap(false) {
				switch websocket.CloseStatus(err) {
				case websocket.StatusTryAgainLater:
					reason = "slow"
				case websocket.StatusGoingAway:
					c.err = fmt.Errorf("server going away: %w", err)
					return
				default:
					reason = "error"
				}
			} else {
				time.Sleep(cfg.ResumeGap)
			}
			c.drops[reason]++
			dialStart = time.Now()
			var derr error
			for attempt := 0; attempt < 20; attempt++ {
				if ws, derr = dial(ctx, c); derr == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if derr != nil {
				c.err = fmt.Errorf("resume: %w", derr)
				return
			}
			mu.Lock()
			cur = ws
			mu.Unlock()
			if stopped.Load() {
				ws.CloseNow()
			}
			replaying = true
			continue
		}
		var m message
		if err := json.Unmarshal(b, &m); err != nil {
			c.err = fmt.Errorf("decode %q: %w", bytes.TrimSpace(b[:min(len(b), 80)]), err)
			return
		}
		c.epoch, c.offset = m.Stream.Epoch, m.Stream.Offset
		switch m.Type {
		case "stream.connected":
			if replaying {
				c.resumes = append(c.resumes, now.Sub(dialStart))
				c.replayed += m.Replayed
				replaying = false
			}
		case "stream.resync":
			c.err = fmt.Errorf("server asked for a resync: the window is too small for this run")
			return
		default:
			c.add(arrival{id: m.ID, subject: m.Subject, seq: m.Sequence, at: now, sent: m.Time, replay: replaying})
		}
		if c.slow {
			time.Sleep(cfg.SlowDelay)
		}
	}
}

func submit(ctx context.Context, hc *http.Client, cfg config, i int) (string, error) {
	body := fmt.Sprintf(`{"agent":%q,"dataset_id":"wsload-%d-%d","gpus":1}`, cfg.Agent, time.Now().UnixNano(), i)
	req, _ := http.NewRequestWithContext(ctx, "POST", cfg.URL+"/api/v1/jobs", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+cfg.Token)
	req.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("submit job: %w", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("submit job: %s: %s", res.Status, b)
	}
	var j struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return "", fmt.Errorf("submit job: %w", err)
	}
	return j.ID, nil
}

// waitDone polls the job until it finishes and returns its event ids.
func waitDone(ctx context.Context, hc *http.Client, cfg config, id string) ([]string, error) {
	get := func(path string, v any) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", cfg.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+cfg.Token)
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", path, res.Status)
		}
		return json.NewDecoder(res.Body).Decode(v)
	}
	for {
		var j struct {
			State string `json:"state"`
		}
		if err := get("/api/v1/jobs/"+id, &j); err != nil {
			return nil, err
		}
		if j.State == "COMPLETED" || j.State == "FAILED" || j.State == "CANCELLED" {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("job %s did not finish: %w", id, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	var l struct {
		Events []struct {
			ID string `json:"id"`
		} `json:"events"`
	}
	if err := get("/api/v1/jobs/"+id+"/events", &l); err != nil {
		return nil, err
	}
	out := make([]string, len(l.Events))
	for i, e := range l.Events {
		out[i] = e.ID
	}
	return out, nil
}
