package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/orchestrator"
)

// TestRestart stops the server while a job runs and starts a new one on
// the same data directory with a backend that lost its tasks: users, jobs
// and events are all still there, and the running job does not stay
// RUNNING on a task nobody follows: it is failed with a reason and, under
// the retry policy, run again.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir, adminEnv, testOptions(50*time.Millisecond))
	alice := ts.createUser(testAdminToken, "alice", "user")
	done, _ := ts.submit(alice.Token, map[string]any{"agent": "alphacal", "dataset_id": "short"}, nil)
	running, _ := ts.submit(alice.Token, map[string]any{"agent": "anomaly-detection", "dataset_id": "long-survey"}, map[string]string{"X-Correlation-ID": "restart-1"})
	ts.waitJob(alice.Token, done.ID, func(j jobJSON) bool { return j.State == string(orchestrator.StateCompleted) })
	before := ts.waitJob(alice.Token, running.ID, func(j jobJSON) bool { return j.State == string(orchestrator.StateRunning) })
	doneEvents := ts.jobEvents(alice.Token, done.ID)
	runningEvents := ts.jobEvents(alice.Token, running.ID)
	ts.stop()

	ts2 := startServer(t, dir, adminEnv, testOptions(50*time.Millisecond))
	// Alice's token from the first run still works; the completed job and
	// its history are unchanged.
	if j := ts2.getJob(alice.Token, done.ID); j.State != string(orchestrator.StateCompleted) || j.Progress != 100 {
		t.Fatalf("completed job after restart: %+v", j)
	}
	sameEvents(t, "completed job history after restart", ts2.jobEvents(alice.Token, done.ID), doneEvents)

	after := ts2.waitJob(alice.Token, running.ID, func(j jobJSON) bool {
		return j.Attempts > before.Attempts || j.State != string(orchestrator.StateRunning)
	})
	hist := ts2.jobEvents(alice.Token, running.ID)
	if len(hist) <= len(runningEvents) {
		t.Fatalf("running job has %d events after restart, %d before: %v", len(hist), len(runningEvents), types(hist))
	}
	sameEvents(t, "running job history prefix", hist[:len(runningEvents)], runningEvents)
	var failed *events.Event
	for i := len(runningEvents); i < len(hist); i++ {
		if hist[i].Type == events.JobFailed {
			failed = &hist[i]
			break
		}
	}
	if failed == nil {
		t.Fatalf("no job.failed after restart: %v (job %+v)", types(hist), after)
	}
	var d events.JobData
	if err := failed.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.Reason == "" && d.Error == "" {
		t.Fatalf("job.failed after restart carries no reason: %s", failed.Data)
	}
	for i, e := range hist {
		if e.Sequence != int64(i+1) || e.CorrelationID != "restart-1" {
			t.Errorf("event %d %s: sequence %d correlation %q", i, e.Type, e.Sequence, e.CorrelationID)
		}
	}
	t.Logf("after restart: state %s, attempts %d, events %v, failure reason %q", after.State, after.Attempts, types(hist), d.Reason)
	// The retry policy runs it again on the new backend.
	again := ts2.waitJob(alice.Token, running.ID, func(j jobJSON) bool {
		return j.State == string(orchestrator.StateRunning) && j.Attempts == before.Attempts+1
	})
	if again.Error != "" && !strings.Contains(again.Error, "lost") {
		t.Errorf("error after retry %q", again.Error)
	}
}

func TestGeneratedAdminToken(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir, nil, testOptions(50*time.Millisecond))
	m := regexp.MustCompile(`(?m)^\s+(hz_[A-Za-z0-9_-]{43})$`).FindStringSubmatch(ts.stdout.String())
	if m == nil {
		t.Fatalf("no generated token on stdout:\n%s", ts.stdout.String())
	}
	tok := m[1]
	if r := ts.do("GET", "/api/v1/jobs", tok, nil, nil); r.status != http.StatusOK {
		t.Fatalf("generated token: %d %s", r.status, r.body)
	}
	u := ts.createUser(tok, "carol", "admin")
	if r := ts.do("POST", "/api/v1/users", u.Token, map[string]string{"name": "dave"}, nil); r.status != http.StatusCreated {
		t.Fatalf("second admin creating a user: %d %s", r.status, r.body)
	}
	ts.stop()
	for _, secret := range []string{tok, u.Token} {
		if strings.Contains(ts.logs.String(), secret) {
			t.Fatal("a token appears in the logs")
		}
	}

	// Second start: no new token; the first still works. Its hash, not
	// the token, is what the data directory holds.
	ts2 := startServer(t, dir, nil, testOptions(50*time.Millisecond))
	if strings.Contains(ts2.stdout.String(), "hz_") {
		t.Fatalf("token printed again on the second start:\n%s", ts2.stdout.String())
	}
	if r := ts2.do("GET", "/api/v1/jobs", tok, nil, nil); r.status != http.StatusOK {
		t.Fatalf("generated token after restart: %d", r.status)
	}
	ts2.stop()

	// Third start with HORIZONS_ADMIN_TOKEN: it replaces the generated one.
	ts3 := startServer(t, dir, adminEnv, testOptions(50*time.Millisecond))
	if r := ts3.do("GET", "/api/v1/jobs", testAdminToken, nil, nil); r.status != http.StatusOK {
		t.Fatalf("env token: %d", r.status)
	}
	if r := ts3.do("GET", "/api/v1/jobs", tok, nil, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("replaced generated token: %d, want 401", r.status)
	}
	if r := ts3.do("GET", "/api/v1/jobs", u.Token, nil, nil); r.status != http.StatusOK {
		t.Fatalf("other user's token after admin token change: %d", r.status)
	}
}

func TestTokensStoredHashed(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir, adminEnv, testOptions(50*time.Millisecond))
	u := ts.createUser(testAdminToken, "erin", "user")
	ts.stop()
	a, err := openAuthStore(context.Background(), dir+"/"+authDBFile)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var hashes []string
	rows, err := a.db.Query(`SELECT token_hash FROM users ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
	}
	rows.Close()
	// admin, erin: each row holds the hex SHA-256 of its token.
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	if len(hashes) != 2 || hashes[0] != sum(testAdminToken) || hashes[1] != sum(u.Token) {
		t.Fatalf("stored hashes %v", hashes)
	}
	raw, err := os.ReadFile(dir + "/" + authDBFile)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(u.Token)) || bytes.Contains(raw, []byte(testAdminToken)) {
		t.Fatal("a plain token is stored in auth.db")
	}
}

func TestConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, err := parseConfig(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:8080" || cfg.DataDir != "./horizons-data" || cfg.SimSpeedUp != defaultSimSpeedUp || cfg.LogLevel.String() != "INFO" {
		t.Fatalf("defaults %+v", cfg)
	}
	e := map[string]string{envAddr: "0.0.0.0:9000", envDataDir: "/tmp/h", envSimSpeedUp: "100", envLogLevel: "debug"}
	cfg, err = parseConfig(nil, env(e), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "0.0.0.0:9000" || cfg.DataDir != "/tmp/h" || cfg.SimSpeedUp != 100 || cfg.LogLevel.String() != "DEBUG" {
		t.Fatalf("env %+v", cfg)
	}
	cfg, err = parseConfig([]string{"-addr", ":7000", "-data", "d2", "-sim-speedup", "5", "-log-level", "warn"}, env(e), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":7000" || cfg.DataDir != "d2" || cfg.SimSpeedUp != 5 || cfg.LogLevel.String() != "WARN" {
		t.Fatalf("flags over env %+v", cfg)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, map[string]string{envSimSpeedUp: "fast"}, `HORIZONS_SIM_SPEEDUP = "fast"`},
		{nil, map[string]string{envSimSpeedUp: "0"}, `HORIZONS_SIM_SPEEDUP = "0"`},
		{nil, map[string]string{envLogLevel: "loud"}, `HORIZONS_LOG_LEVEL = "loud"`},
		{nil, map[string]string{envSimNodes: "0"}, `HORIZONS_SIM_NODES = "0"`},
		{[]string{"-sim-speedup", "-3"}, nil, `-sim-speedup = "-3"`},
		{[]string{"-addr", "nohostport"}, nil, `-addr = "nohostport"`},
		{[]string{"-log-level", "chatty"}, nil, `-log-level = "chatty"`},
		{[]string{"-sim-failure-rate", "2"}, nil, `-sim-failure-rate = "2"`},
		{[]string{"stray"}, nil, `unexpected argument "stray"`},
		{nil, map[string]string{envAdminToken: "short-secret"}, envAdminToken + " is 12 characters long"},
	} {
		_, err := parseConfig(tc.args, env(tc.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("args %v env %v: error %v, want it to mention %s", tc.args, tc.env, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "short-secret") {
			t.Errorf("the admin token value leaked into the error: %v", err)
		}
	}
	if _, err := parseConfig([]string{"-h"}, env(nil), io.Discard); !errors.Is(err, errHelp) {
		t.Errorf("-h: %v", err)
	}
}

// TestRunRejectsBadConfig checks that run fails cleanly, naming the bad
// flag or path.
func TestRunRejectsBadConfig(t *testing.T) {
	err := run(context.Background(), []string{"-sim-speedup", "zero"}, func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-sim-speedup") {
		t.Fatalf("run with a bad flag: %v", err)
	}
	dir := t.TempDir()
	// The data directory path is a file: a clear error, nothing left
	// running.
	file := dir + "/file"
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), []string{"-data", file, "-addr", "127.0.0.1:0"}, func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("run with a file as data dir: %v", err)
	}
}

// TestShutdownClosesStreams checks that a graceful shutdown tells stream
// clients the server is going away instead of leaving them hanging.
func TestShutdownClosesStreams(t *testing.T) {
	ts := startServer(t, t.TempDir(), adminEnv, testOptions(50*time.Millisecond))
	ws, _, err := ts.dialWS(testAdminToken, "", false)
	if err != nil {
		t.Fatal(err)
	}
	sse, r := ts.dialSSE(testAdminToken, "")
	if sse == nil {
		t.Fatalf("sse %d", r.status)
	}
	ts.stop()
	select {
	case err := <-ws.closed:
		if websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Errorf("websocket closed with %v, want going away", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("websocket not closed by shutdown")
	}
	select {
	case _, ok := <-sse.events:
		if ok {
			t.Error("unexpected SSE event")
		}
	case <-time.After(waitLimit):
		t.Fatal("SSE stream not closed by shutdown")
	}
}
