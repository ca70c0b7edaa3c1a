package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// The baseline is a bare coder/websocket broadcaster in a child process:
// no token check, hub, bus, outbox or store. The same clients measure it
// with the same number of events at the server run's pace, and the report
// puts both side by side, so the platform's cost over plain WebSocket
// fan-out on this machine is a ratio.

// serveBaseline runs the broadcaster on addr and prints its address.
func serveBaseline(addr string, out io.Writer) error {
	if _, err := raiseNoFile(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	clients := map[chan []byte]struct{}{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/ws", func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		ch := make(chan []byte, 256)
		mu.Lock()
		clients[ch] = struct{}{}
		mu.Unlock()
		defer func() { mu.Lock(); delete(clients, ch); mu.Unlock() }()
		ctx := conn.CloseRead(r.Context())
		if conn.Write(ctx, websocket.MessageText, []byte(`{"type":"stream.connected","stream":{"epoch":"baseline","offset":0}}`)) != nil {
			return
		}
		for {
			select {
			case <-ctx.Done():
				return
			case b := <-ch:
				if conn.Write(ctx, websocket.MessageText, b) != nil {
					return
				}
			}
		}
	})
	// GET /publish?n=&interval= sends n events, one every interval, each
	// stamped when it is handed to the clients.
	mux.HandleFunc("GET /publish", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		iv, _ := time.ParseDuration(r.URL.Query().Get("interval"))
		pad := strings.Repeat("x", 400) // about the size of a job event
		for i := 1; i <= n; i++ {
			b := fmt.Appendf(nil, `{"stream":{"epoch":"baseline","offset":%d},"id":"b-%d","type":"job.progress","subject":"baseline","time":%q,"sequence":%d,"data":{"pad":%q}}`,
				i, i, time.Now().UTC().Format(time.RFC3339Nano), i, pad)
			mu.Lock()
			for ch := range clients {
				select {
				case ch <- b:
				default: // a full buffer: dropped, as the hub does
				}
			}
			mu.Unlock()
			time.Sleep(iv)
		}
	})
	fmt.Fprintf(out, "baseline listening on %s\n", ln.Addr())
	return http.Serve(ln, mux)
}

// baselineResult is what the baseline run measured.
type baselineResult struct {
	Latency, Spread []time.Duration
	Lost            int
}

// runBaseline starts the broadcaster, connects cfg.Conns clients, sends
// events events every interval and measures them.
func runBaseline(ctx context.Context, cfg config, events int, interval time.Duration, log io.Writer) (*baselineResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-serve-baseline", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the baseline broadcaster: %w", err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "baseline listening on ")
	if err != nil || !ok {
		return nil, fmt.Errorf("baseline broadcaster said %q: %v", line, err)
	}
	bcfg := cfg
	bcfg.URL, bcfg.Slow, bcfg.Reconnect = "http://"+addr, 0, 0
	hc := &http.Client{Timeout: 30 * time.Second}
	wsURL := "ws://" + addr + "/api/v1/ws"
	conns := make([]*conn, cfg.Conns)
	var wg, connected sync.WaitGroup
	stop := make(chan struct{})
	sem := make(chan struct{}, cfg.DialPar)
	connected.Add(len(conns))
	var errs int
	var errMu sync.Mutex
	for i := range conns {
		c := &conn{drops: map[string]int{}}
		conns[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			ws, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: hc})
			<-sem
			connected.Done()
			if err != nil {
				errMu.Lock()
				errs++
				errMu.Unlock()
				return
			}
			ws.SetReadLimit(1 << 20)
			c.read(ctx, ws, bcfg, func(context.Context, *conn) (*websocket.Conn, error) {
				return nil, fmt.Errorf("the baseline does not reconnect")
			}, stop, nil)
		}()
	}
	connected.Wait()
	if errs > 0 {
		close(stop)
		wg.Wait()
		return nil, fmt.Errorf("%d baseline connections failed", errs)
	}
	res, err := hc.Get(fmt.Sprintf("http://%s/publish?n=%d&interval=%s", addr, events, interval))
	if err != nil {
		close(stop)
		wg.Wait()
		return nil, err
	}
	res.Body.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		behind := 0
		for _, c := range conns {
			if c.count() < events {
				behind++
			}
		}
		if behind == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	want := map[string]bool{}
	for i := 1; i <= events; i++ {
		want["b-"+strconv.Itoa(i)] = true
	}
	out := &baselineResult{}
	first, last := map[string]time.Time{}, map[string]time.Time{}
	for _, c := range conns {
		l, _, _ := c.check(want)
		out.Lost += l
		for _, a := range c.got {
			out.Latency = append(out.Latency, a.at.Sub(a.sent))
			if f, ok := first[a.id]; !ok || a.at.Before(f) {
				first[a.id] = a.at
			}
			if a.at.After(last[a.id]) {
				last[a.id] = a.at
			}
		}
	}
	for id, f := range first {
		out.Spread = append(out.Spread, last[id].Sub(f))
	}
	return out, nil
}

// printBaseline puts the server's figures next to the baseline's.
func printBaseline(w io.Writer, r *report, b *baselineResult, interval time.Duration) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Fprintf(w, "\nbaseline: bare coder/websocket broadcast, same %d clients, %d events every %s\n", r.Conns, r.Events, interval.Round(time.Millisecond))
	fmt.Fprintf(w, "%-22s %12s %12s %8s\n", "", "server", "baseline", "ratio")
	row := func(name string, s, bl time.Duration) {
		ratio := "-"
		if bl > 0 {
			ratio = fmt.Sprintf("%.2fx", float64(s)/float64(bl))
		}
		fmt.Fprintf(w, "%-22s %9.1f ms %9.1f ms %8s\n", name, ms(s), ms(bl), ratio)
	}
	row("delivery latency p50", pct(r.Latency, 50), pct(b.Latency, 50))
	row("delivery latency p99", pct(r.Latency, 99), pct(b.Latency, 99))
	row("fan-out spread p50", pct(r.Spread, 50), pct(b.Spread, 50))
	row("fan-out spread p99", pct(r.Spread, 99), pct(b.Spread, 99))
	fmt.Fprintf(w, "%-22s %12d %12d\n", "messages lost", r.Lost, b.Lost)
}
