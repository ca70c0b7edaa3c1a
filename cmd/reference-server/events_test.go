package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/internal/pgtest"
	"github.com/cosmic-horizons/horizons/orchestrator"
)

// requireServices reports whether a missing live service is a failure.
func requireServices() bool { return os.Getenv("HORIZONS_REQUIRE_SERVICES") == "1" }

// liveAMQP returns the RabbitMQ URL of HORIZONS_AMQP_URL (default the local
// broker, guest/guest), skipping when it is unreachable unless
// HORIZONS_REQUIRE_SERVICES=1.
func liveAMQP(t testing.TB) string {
	t.Helper()
	u := os.Getenv("HORIZONS_AMQP_URL")
	if u == "" {
		u = "amqp://guest:guest@127.0.0.1:5672/"
	}
	tr, err := openEventTransport(context.Background(), u, eventsOptions{Logger: quietLog()})
	if err == nil {
		err = tr.ping(context.Background())
		_ = tr.close()
	}
	if err != nil {
		if requireServices() {
			t.Fatalf("RabbitMQ unreachable and HORIZONS_REQUIRE_SERVICES=1: %v", err)
		}
		t.Skipf("RabbitMQ unreachable (set HORIZONS_AMQP_URL): %v", err)
	}
	return u
}

// livePostgres returns the PostgreSQL URL of HORIZONS_POSTGRES_URL (default
// the local server, database test), skipping as liveAMQP does.
func livePostgres(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("HORIZONS_POSTGRES_URL")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=3"
	}
	db, err := sql.Open("pgx", dsn)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
		_ = db.Close()
	}
	if err != nil {
		if requireServices() {
			t.Fatalf("PostgreSQL unreachable and HORIZONS_REQUIRE_SERVICES=1: %v", err)
		}
		t.Skipf("PostgreSQL unreachable (set HORIZONS_POSTGRES_URL): %v", err)
	}
	return dsn
}

// dropPostgresTopics drops the watermill tables of every topic with prefix.
func dropPostgresTopics(t testing.TB, dsn, prefix string) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer db.Close()
	rows, err := db.Query(`SELECT tablename FROM pg_tables WHERE tablename LIKE $1`, "watermill_%"+prefix+"%")
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	var names []string
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		names = append(names, n)
	}
	rows.Close()
	for _, n := range names {
		if _, err := db.Exec(`DROP TABLE IF EXISTS "` + n + `"`); err != nil {
			t.Errorf("cleanup: drop %s: %v", n, err)
		}
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// withParams adds query parameters to a URL.
func withParams(t testing.TB, raw string, kv ...string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// transportCase is one event transport a test runs the server on.
type transportCase struct {
	name string
	// url returns the -events URL, with a topic prefix unique to the test
	// on shared brokers, and registers the clean-up.
	url func(t testing.TB) string
}

func kfakeURL(t testing.TB) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(4))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return "kafka://" + strings.Join(c.ListenAddrs(), ",")
}

// uniquePrefix is a topic prefix unique to one test run.
func uniquePrefix() string { return "t" + strings.ReplaceAll(uuid.NewString()[:13], "-", "") + "." }

var transportCases = []transportCase{
	{"mem", func(t testing.TB) string { return "mem://" }},
	{"kafka", func(t testing.TB) string { return kfakeURL(t) }},
	{"amqp", func(t testing.TB) string {
		return withParams(t, liveAMQP(t), paramTopicPrefix, uniquePrefix(), "queue_expiry", "1m")
	}},
	{"postgres", func(t testing.TB) string {
		dsn := livePostgres(t)
		p := uniquePrefix()
		t.Cleanup(func() { dropPostgresTopics(t, dsn, p) })
		return withParams(t, dsn, paramTopicPrefix, p, "poll_interval", "20ms")
	}},
	{"sqlite", func(t testing.TB) string { return "sqlite://" + t.TempDir() + "/bus.db?poll_interval=20ms" }},
}

// TestEndToEndOnEachTransport runs the whole server on each event
// transport: a job submitted over REST is seen COMPLETED on the owner's
// WebSocket (through the notifications consumer), its events are in the
// audit chain, and the chain verifies.
func TestEndToEndOnEachTransport(t *testing.T) {
	for _, tc := range transportCases {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{envAdminToken: testAdminToken, envEvents: tc.url(t)}
			ts := startServer(t, t.TempDir(), env, testOptions(50*time.Millisecond))
			if !strings.Contains(ts.logs.String(), "event transport ready") {
				t.Fatalf("no 'event transport ready' log line:\n%s", ts.logs.String())
			}
			alice := ts.createUser(testAdminToken, "alice", "user")
			ws, _, err := ts.dialWS(alice.Token, "", false)
			if err != nil {
				t.Fatal(err)
			}
			j, r := ts.submit(alice.Token, map[string]any{"agent": "alphacal", "dataset_id": "vlass-" + tc.name, "gpus": 1}, nil)
			if r.status != 201 {
				t.Fatalf("submit: %d %s", r.status, r.body)
			}
			got := until(t, ws.events, func(e events.Event) bool { return e.Subject == j.ID && e.Type == events.JobCompleted })
			seen := map[string]bool{}
			for _, e := range got {
				if seen[e.ID] {
					t.Errorf("event %s (%s) delivered twice on the WebSocket", e.ID, e.Type)
				}
				seen[e.ID] = true
			}
			if got[0].Subject == j.ID && got[0].Type != events.JobSubmitted {
				t.Errorf("first event on the WebSocket is %s, want %s", got[0].Type, events.JobSubmitted)
			}
			// Every stored event of the job reaches the audit chain.
			want := ts.jobEvents(alice.Token, j.ID)
			var recs auditList
			deadline := time.Now().Add(waitLimit)
			for {
				r := ts.do("GET", "/api/v1/admin/audit?job_id="+j.ID, testAdminToken, nil, nil)
				if r.status != 200 {
					t.Fatalf("audit: %d %s", r.status, r.body)
				}
				r.decode(t, &recs)
				if len(recs.Records) >= len(want) || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if len(recs.Records) != len(want) {
				t.Fatalf("audit holds %d records of job %s, the job has %d events", len(recs.Records), j.ID, len(want))
			}
			r = ts.do("POST", "/api/v1/admin/audit/verify", testAdminToken, nil, nil)
			var rep verifyResponse
			r.decode(t, &rep)
			if r.status != 200 || !rep.OK || rep.Records < int64(len(want)) {
				t.Fatalf("verify: %d %s", r.status, r.body)
			}
			r = ts.do("GET", "/readyz", "", nil, nil)
			if r.status != 200 {
				t.Fatalf("readyz: %d %s", r.status, r.body)
			}
			// The metrics consumer counted the job's completion.
			for deadline := time.Now().Add(waitLimit); ; {
				r = ts.do("GET", "/metrics", "", nil, nil)
				if strings.Contains(string(r.body), `consumer_horizons_job_events_total{agent="alphacal",state="COMPLETED",type="job.completed"} 1`) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no completed job in the metrics consumer's counters:\n%s", r.body)
				}
				time.Sleep(20 * time.Millisecond)
			}
			var hr struct {
				Status    string           `json:"status"`
				Transport string           `json:"transport"`
				Lag       map[string]int64 `json:"lag"`
			}
			deadline = time.Now().Add(waitLimit)
			for {
				r = ts.do("GET", "/api/v1/admin/events/health", testAdminToken, nil, nil)
				r.decode(t, &hr)
				if r.status != 200 || hr.Transport != strings.TrimSuffix(tc.name, "ql") && hr.Transport != tc.name {
					t.Fatalf("health: %d %s", r.status, r.body)
				}
				// Kafka tells the consumer lag: it drains to zero once the
				// consumers have committed.
				if tc.name == "mem" || tc.name == "amqp" || (len(hr.Lag) == 6 && hr.Lag[groupAnalytics] == 0 && hr.Lag[groupCache] == 0 && hr.Lag[groupAudit] == 0 && hr.Lag[groupMetrics] == 0 && hr.Lag[groupNotifications] == 0) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s consumer lag never drained: %s", tc.name, r.body)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// TestEventsURLErrors: a bad -events value fails at start-up with a message
// naming the flag (or variable) and the value with any password redacted.
func TestEventsURLErrors(t *testing.T) {
	const secret = "s3cret-Passw0rd"
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-events", "ftp://u:" + secret + "@host/"}, nil, `-events = ftp://u:xxxxx@host/: unknown scheme "ftp"`},
		{nil, map[string]string{envEvents: "redis://u:" + secret + "@host/"}, envEvents + ` = redis://u:xxxxx@host/: unknown scheme "redis"`},
		{[]string{"-events", "kafka://"}, nil, "-events = kafka://: names no host"},
		{[]string{"-events", "sqlite://"}, nil, "-events = sqlite://: names no database file"},
		{[]string{"-events", "amqp://u:" + secret + "@h:5672/?topic_prefix=a/b"}, nil, `parameter topic_prefix="a/b"`},
		{[]string{"-events", "postgres://u:%zz" + secret + "@h/db"}, nil, "-events = (a URL that does not parse"},
	} {
		_, err := parseConfig(append([]string{"-data", t.TempDir()}, tc.args...), func(k string) string { return tc.env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: error %v, want it to contain %q", tc.args, tc.env, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%v: error shows the password: %v", tc.args, err)
		}
	}
	// A value that parses but whose parameters are wrong fails when the
	// server starts, again without the password.
	for _, raw := range []string{
		"mem://?max_pending=-3",
		"kafka://127.0.0.1:1?partitions=zero",
		"postgres://u:" + secret + "@127.0.0.1:5432/db?poll_interval=fast",
	} {
		cfg, err := parseConfig([]string{"-data", t.TempDir(), "-addr", "127.0.0.1:0", "-events", raw}, nil, io.Discard)
		if err != nil {
			t.Fatalf("%s: parseConfig: %v", raw, err)
		}
		logs := &syncBuffer{}
		_, err = newServer(context.Background(), cfg, io.Discard, serverOptions{Logger: slog.New(slog.NewTextHandler(logs, nil))})
		if err == nil {
			t.Fatalf("%s: server started", raw)
		}
		if !strings.HasPrefix(err.Error(), "-events = ") || strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
			t.Errorf("%s: error %q (logs %q)", raw, err, logs.String())
		}
	}
}

// TestEventsBadCredentials starts the server against the live RabbitMQ and
// PostgreSQL with a wrong password, from the URL and from
// HORIZONS_EVENTS_PASSWORD: start-up fails naming -events, and neither the
// error nor the logs show the password.
func TestEventsBadCredentials(t *testing.T) {
	const secret = "Wr0ng-pa55word-xyz"
	amqpURL, err := url.Parse(liveAMQP(t))
	if err != nil {
		t.Fatal(err)
	}
	pgURL, err := url.Parse(livePostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	// PostgreSQL here trusts local connections: a wrong password is only
	// refused for a user that does not exist.
	withUser := func(u *url.URL, name, pw string) string {
		c := *u
		if pw == "" {
			c.User = url.User(name)
		} else {
			c.User = url.UserPassword(name, pw)
		}
		return c.String()
	}
	for _, tc := range []struct {
		name, events, envPassword string
	}{
		{"amqp-url", withUser(amqpURL, "guest", secret), ""},
		{"amqp-env", withUser(amqpURL, "guest", ""), secret},
		{"postgres-url", withUser(pgURL, "nobody_"+strings.ReplaceAll(uuid.NewString()[:8], "-", ""), secret), ""},
		{"postgres-env", withUser(pgURL, "nobody_"+strings.ReplaceAll(uuid.NewString()[:8], "-", ""), ""), secret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{envEvents: tc.events, envEventsPassword: tc.envPassword}
			cfg, err := parseConfig([]string{"-data", t.TempDir(), "-addr", "127.0.0.1:0", "-log-level", "debug"}, func(k string) string { return env[k] }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			logs := &syncBuffer{}
			s, err := newServer(context.Background(), cfg, io.Discard, serverOptions{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			if err == nil {
				_ = s.shutdown(context.Background())
				t.Fatal("server started with a wrong password")
			}
			if !strings.HasPrefix(err.Error(), "-events = ") {
				t.Errorf("error does not name -events: %v", err)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
				t.Errorf("password shown: error %q\nlogs:\n%s", err, logs.String())
			}
			t.Logf("start-up error: %v", err)
		})
	}
}

// TestDeadLettersAuditAndReplayOverREST breaks the audit consumer (its
// table is dropped), so every event of a job fails on the retry ladder and
// is dead-lettered; the admin lists and inspects the dead letters, repairs
// the table, replays them over REST, and the audit chain then holds the
// job's history and verifies. A tampered record is then reported. Users
// who are not admins get 403 everywhere.
func TestDeadLettersAuditAndReplayOverREST(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(20 * time.Millisecond)
	opts.Router = func(c *events.RouterConfig) {
		c.MaxRetries, c.InitialInterval, c.MaxInterval = 2, time.Millisecond, 4*time.Millisecond
	}
	ts := startServer(t, dir, adminEnv, opts)
	db, err := sql.Open("sqlite", "file:"+dir+"/"+eventsDBFile+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("DROP TABLE audit_records"); err != nil {
		t.Fatal(err)
	}
	alice := ts.createUser(testAdminToken, "alice", "user")
	for _, p := range []struct{ method, path string }{
		{"GET", "/api/v1/admin/dead-letters"}, {"GET", "/api/v1/admin/dead-letters/x"},
		{"POST", "/api/v1/admin/dead-letters/x/replay"}, {"GET", "/api/v1/admin/audit"},
		{"POST", "/api/v1/admin/audit/verify"}, {"POST", "/api/v1/admin/replay"}, {"GET", "/api/v1/admin/events/health"},
	} {
		if r := ts.do(p.method, p.path, alice.Token, nil, nil); r.status != 403 {
			t.Errorf("%s %s as a user: %d %s", p.method, p.path, r.status, r.body)
		}
		if r := ts.do(p.method, p.path, "", nil, nil); r.status != 401 {
			t.Errorf("%s %s without a token: %d", p.method, p.path, r.status)
		}
	}
	j, r := ts.submit(alice.Token, map[string]any{"agent": "alphacal", "dataset_id": "dl", "gpus": 1}, nil)
	if r.status != 201 {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	ts.waitJob(alice.Token, j.ID, func(j jobJSON) bool { return j.State == "COMPLETED" })
	want := ts.jobEvents(alice.Token, j.ID)

	var list deadLetterList
	deadline := time.Now().Add(waitLimit)
	for {
		r := ts.do("GET", "/api/v1/admin/dead-letters?handler=audit&job_id="+j.ID, testAdminToken, nil, nil)
		if r.status != 200 {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		r.decode(t, &list)
		if len(list.DeadLetters) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(list.DeadLetters) != len(want) {
		t.Fatalf("%d dead letters, want one per event (%d)", len(list.DeadLetters), len(want))
	}
	for i, l := range list.DeadLetters {
		if l.Topic != events.TopicJobs || l.Attempts != 3 || !strings.Contains(l.Reason, "audit_records") {
			t.Errorf("dead letter %d: %+v", i, l)
		}
	}
	r = ts.do("GET", "/api/v1/admin/dead-letters/"+list.DeadLetters[0].ID, testAdminToken, nil, nil)
	var one struct {
		ID    string       `json:"id"`
		Event events.Event `json:"event"`
	}
	r.decode(t, &one)
	if r.status != 200 || one.Event.Subject != j.ID || one.Event.Type != events.JobSubmitted {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	if r := ts.do("GET", "/api/v1/admin/dead-letters/nope", testAdminToken, nil, nil); r.status != 404 {
		t.Fatalf("unknown dead letter: %d", r.status)
	}
	if r := ts.do("GET", "/api/v1/admin/dead-letters?limit=0", testAdminToken, nil, nil); r.status != 400 || r.apiErr(t).Field != "limit" {
		t.Fatalf("limit=0: %d %s", r.status, r.body)
	}

	// Repair the table (as a restarted audit store would) and replay.
	if _, err := db.Exec(`CREATE TABLE audit_records (seq BIGINT PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, event TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, l := range list.DeadLetters {
		if r := ts.do("POST", "/api/v1/admin/dead-letters/"+l.ID+"/replay", testAdminToken, nil, nil); r.status != 200 {
			t.Fatalf("replay %s: %d %s", l.ID, r.status, r.body)
		}
	}
	var recs auditList
	deadline = time.Now().Add(waitLimit)
	for {
		ts.do("GET", "/api/v1/admin/audit?job_id="+j.ID, testAdminToken, nil, nil).decode(t, &recs)
		if len(recs.Records) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(recs.Records) != len(want) {
		t.Fatalf("audit holds %d records after the replay, want %d", len(recs.Records), len(want))
	}
	for i, rec := range recs.Records {
		if rec.Event.ID != want[i].ID {
			t.Errorf("audit record %d is event %s (%s), want %s (%s)", i, rec.Event.ID, rec.Event.Type, want[i].ID, want[i].Type)
		}
	}
	var rep verifyResponse
	r = ts.do("POST", "/api/v1/admin/audit/verify", testAdminToken, nil, nil)
	r.decode(t, &rep)
	if r.status != 200 || !rep.OK || rep.Records != int64(len(want)) {
		t.Fatalf("verify: %d %s", r.status, r.body)
	}

	// Replaying the job's history to the audit consumer adds nothing: it
	// has every event already.
	r = ts.do("POST", "/api/v1/admin/replay", testAdminToken, map[string]any{"job_id": j.ID, "consumer": "audit"}, nil)
	var rr replayResponse
	r.decode(t, &rr)
	if r.status != 200 || rr.Delivered != len(want) {
		t.Fatalf("replay job: %d %s", r.status, r.body)
	}
	r = ts.do("POST", "/api/v1/admin/audit/verify", testAdminToken, nil, nil)
	r.decode(t, &rep)
	if !rep.OK || rep.Records != int64(len(want)) {
		t.Fatalf("verify after the job replay: %s", r.body)
	}
	if r := ts.do("POST", "/api/v1/admin/replay", testAdminToken, map[string]any{"job_id": j.ID, "consumer": "billing"}, nil); r.status != 400 || r.apiErr(t).Field != "consumer" {
		t.Fatalf("unknown consumer: %d %s", r.status, r.body)
	}
	// A time range from the audit chain, to the notifications consumer:
	// the hub skips what it has seen, but every event in the range is
	// delivered in order.
	from := want[1].Time.Format(time.RFC3339Nano)
	r = ts.do("POST", "/api/v1/admin/replay", testAdminToken, map[string]any{"from": from, "consumer": "notifications", "job_id": j.ID}, nil)
	r.decode(t, &rr)
	if r.status != 200 || rr.Delivered != len(want)-1 {
		t.Fatalf("replay range from event 2: %d %s (want %d)", r.status, r.body, len(want)-1)
	}
	for _, bad := range []map[string]any{
		{"from": "yesterday", "consumer": "audit"},
		{"from": from, "to": from, "consumer": "audit"},
		{"consumer": "audit"},
	} {
		if r := ts.do("POST", "/api/v1/admin/replay", testAdminToken, bad, nil); r.status != 400 {
			t.Errorf("replay %v: %d %s", bad, r.status, r.body)
		}
	}

	// Tamper with the second record: verify names it.
	if _, err := db.Exec(`UPDATE audit_records SET event = replace(event, '"alphacal"', '"imaging"') WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	r = ts.do("POST", "/api/v1/admin/audit/verify", testAdminToken, nil, nil)
	r.decode(t, &rep)
	if rep.OK || rep.FirstBad != 2 || rep.Problem != "tampered" {
		t.Fatalf("tampered chain: %s", r.body)
	}
}

// TestHealthReportsPublished: the health monitor publishes system.health
// events on its period and answers the admin health endpoint.
func TestHealthReportsPublished(t *testing.T) {
	opts := testOptions(time.Hour)
	opts.HealthInterval = 20 * time.Millisecond
	opts.Logger = quietLog()
	cfg, err := parseConfig([]string{"-addr", "127.0.0.1:0", "-data", t.TempDir()}, func(k string) string { return adminEnv[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServer(context.Background(), cfg, io.Discard, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	ds, err := s.bus.Subscribe(ctx, events.TopicHealth)
	if err != nil {
		t.Fatal(err)
	}
	var d events.Delivery
	select {
	case d = <-ds:
		d.Ack()
	case <-ctx.Done():
		t.Fatal("no system.health event")
	}
	var rep struct {
		Status    string `json:"status"`
		Transport string `json:"transport"`
		Connected bool   `json:"connected"`
	}
	if err := d.Event.Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if d.Event.Type != "system.health" || rep.Status != "healthy" || rep.Transport != "mem" || !rep.Connected {
		t.Fatalf("health event %+v: %+v", d.Event, rep)
	}
}

// TestZeroLossAcrossRestart runs the server on each durable transport,
// stops it while jobs are in flight, and starts a new one on the same data
// directory and the same broker: the outbox forwards through whichever bus
// is configured, the consumers resume in their groups, and in the end the
// audit chain holds every stored event of every job exactly once, in
// order, and verifies.
func TestZeroLossAcrossRestart(t *testing.T) {
	for _, tc := range transportCases {
		if tc.name == "mem" {
			continue // nothing survives a restart in memory but the outbox
		}
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			env := map[string]string{envAdminToken: testAdminToken, envEvents: tc.url(t)}
			ts := startServer(t, dir, env, testOptions(30*time.Millisecond))
			alice := ts.createUser(testAdminToken, "alice", "user")
			var ids []string
			for i := 0; i < 6; i++ {
				j, r := ts.submit(alice.Token, map[string]any{"agent": "alphacal", "dataset_id": "restart-" + tc.name, "gpus": 1}, nil)
				if r.status != 201 {
					t.Fatalf("submit: %d %s", r.status, r.body)
				}
				ids = append(ids, j.ID)
			}
			ts.waitJob(alice.Token, ids[0], func(j jobJSON) bool { return j.State != "SUBMITTED" && j.State != "QUEUED" })
			ts.stop()

			ts2 := startServer(t, dir, env, testOptions(30*time.Millisecond))
			for _, id := range ids {
				ts2.waitJob(alice.Token, id, func(j jobJSON) bool { return j.State == "COMPLETED" })
			}
			for _, id := range ids {
				want := ts2.jobEvents(alice.Token, id)
				var recs auditList
				deadline := time.Now().Add(waitLimit)
				for {
					ts2.do("GET", "/api/v1/admin/audit?job_id="+id, testAdminToken, nil, nil).decode(t, &recs)
					if len(recs.Records) >= len(want) || time.Now().After(deadline) {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				if len(recs.Records) != len(want) {
					t.Errorf("job %s: audit holds %d records, the store %d events (%v)", id, len(recs.Records), len(want), types(want))
					continue
				}
				for i, rec := range recs.Records {
					if rec.Event.ID != want[i].ID {
						t.Errorf("job %s: audit record %d is %s %s, want %s %s", id, i, rec.Event.Type, rec.Event.ID, want[i].Type, want[i].ID)
					}
				}
			}
			var rep verifyResponse
			ts2.do("POST", "/api/v1/admin/audit/verify", testAdminToken, nil, nil).decode(t, &rep)
			if !rep.OK {
				t.Fatalf("audit chain after the restart: %+v", rep)
			}
			t.Logf("%d audit records across the restart, chain verified", rep.Records)
		})
	}
}

// TestTwoReplicasShareStoreAndKafka: two servers share a PostgreSQL job
// store and a Kafka bus. Each replica's hub reads notifications in a group
// of its own, so a WebSocket on one replica sees the jobs submitted on the
// other; the audit chain lives in the shared store and holds every event of
// both replicas once, and verifies.
func TestTwoReplicasShareStoreAndKafka(t *testing.T) {
	dsn, _ := pgtest.Schema(t, "refsrv_events")
	env := map[string]string{envAdminToken: testAdminToken, envStore: dsn, envEvents: kfakeURL(t)}
	a := startServer(t, t.TempDir(), env, testOptions(30*time.Millisecond))
	b := startServer(t, t.TempDir(), env, testOptions(30*time.Millisecond))
	wsB, _, err := b.dialWS(testAdminToken, "", false)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	submit := func(ts *testServer, dataset string) string {
		t.Helper()
		j, r := ts.submit(testAdminToken, map[string]any{"agent": "alphacal", "dataset_id": dataset, "gpus": 1}, nil)
		if r.status != 201 {
			t.Fatalf("submit: %d %s", r.status, r.body)
		}
		ids = append(ids, j.ID)
		return j.ID
	}
	// Replica b's notification group joins Kafka in the background and
	// reads from the newest offset, so events published before it has
	// joined never reach it. Submit warm-up jobs on a until b's WebSocket
	// shows one of them; those jobs count in the audit total like the rest.
	joined := false
	for deadline := time.Now().Add(waitLimit); !joined && time.Now().Before(deadline); {
		submit(a, fmt.Sprintf("warm-up-%d", len(ids)))
		wait := time.After(3 * time.Second)
		for !joined {
			select {
			case e := <-wsB.events:
				joined = slices.Contains(ids, e.Subject)
				continue
			case <-wait:
			}
			break
		}
	}
	if !joined {
		t.Fatalf("replica b's WebSocket saw none of %d jobs submitted on replica a within %s", len(ids), waitLimit)
	}
	var lastA string
	for i := 0; i < 4; i++ {
		if i%2 == 1 {
			submit(b, fmt.Sprintf("replica-%d", i))
		} else {
			lastA = submit(a, fmt.Sprintf("replica-%d", i))
		}
	}
	// Replica b's WebSocket sees a job submitted on replica a complete.
	until(t, wsB.events, func(e events.Event) bool { return e.Subject == lastA && e.Type == events.JobCompleted })
	total := 0
	for _, id := range ids {
		a.waitJob(testAdminToken, id, func(j jobJSON) bool { return j.State == "COMPLETED" })
		total += len(a.jobEvents(testAdminToken, id))
	}
	var rep verifyResponse
	deadline := time.Now().Add(waitLimit)
	for {
		b.do("POST", "/api/v1/admin/audit/verify", testAdminToken, nil, nil).decode(t, &rep)
		if rep.Records >= int64(total) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !rep.OK || rep.Records != int64(total) {
		t.Fatalf("shared audit chain: %+v, want %d records", rep, total)
	}
}

func TestEventsRetryFlag(t *testing.T) {
	cfg, err := parseConfig([]string{"-data", t.TempDir(), "-events-retry", "retries=3,initial=200ms,multiplier=3,max=1s,jitter=0,retries.audit=0"}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d, err := cfg.EventsRetry.RetryDelays()
	if err != nil || fmt.Sprint(d) != "[200ms 600ms 1s]" || cfg.EventsRetry.Jitter >= 0 || cfg.EventsRetry.MaxRetriesByHandler["audit"] >= 0 {
		t.Fatalf("ladder %v %v %+v", d, err, cfg.EventsRetry)
	}
	// The default ladder: 1, 2, 4, 8, 16 s.
	cfg, err = parseConfig([]string{"-data", t.TempDir()}, nil, io.Discard)
	if d, _ := cfg.EventsRetry.RetryDelays(); err != nil || fmt.Sprint(d) != "[1s 2s 4s 8s 16s]" {
		t.Fatalf("default ladder %v %v", d, err)
	}
	for _, bad := range []string{"retries=x", "initial=-1s", "max=100ms,initial=1s", "multiplier=0.5", "jitter=1.5", "retries.billing=2", "colour=blue", "retries"} {
		_, err := parseConfig([]string{"-data", t.TempDir(), "-events-retry", bad}, nil, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "-events-retry") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := parseConfig([]string{"-data", t.TempDir()}, func(k string) string {
		return map[string]string{envEventsRetry: "retries=-2"}[k]
	}, io.Discard); err == nil {
		t.Error("a bad HORIZONS_EVENTS_RETRY was accepted")
	}
}

// TestOutboxHoldsEventsWhileTheBusIsDown: the Kafka broker goes away while
// a job runs; its transitions are committed with their events in the
// outbox, which the forwarder cannot empty. The server is stopped and a new
// one started on the same data directory with a new broker: the outbox is
// forwarded there, and the audit consumer ends up with every event of both
// jobs exactly once.
func TestOutboxHoldsEventsWhileTheBusIsDown(t *testing.T) {
	dir := t.TempDir()
	c1, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(4))
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	opts := testOptions(30 * time.Millisecond)
	opts.Logger = quietLog()
	env := map[string]string{envAdminToken: testAdminToken, envEvents: "kafka://" + strings.Join(c1.ListenAddrs(), ",")}
	cfg, err := parseConfig([]string{"-addr", "127.0.0.1:0", "-data", dir}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := newServer(context.Background(), cfg, io.Discard, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	owner := "alice"
	submit := func(s *server, ds string) string {
		t.Helper()
		j, _, err := s.orch.Submit(ctx, owner, orchestrator.Spec{Agent: "alphacal", DatasetID: ds, GPUs: 1})
		if err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	waitDone := func(s *server, id string) {
		t.Helper()
		deadline := time.Now().Add(waitLimit)
		for {
			j, err := s.store.GetJob(ctx, id)
			if err == nil && j.State == orchestrator.StateCompleted {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s not completed: %+v %v", id, j, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	job1 := submit(s1, "bus-up")
	waitDone(s1, job1)
	// The audit consumer has job 1's events before the broker (with
	// everything it held) is destroyed.
	evs1, err := s1.store.JobEvents(ctx, job1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(waitLimit); ; {
		n, _ := s1.evs.chain.ReplayRange(ctx, time.Time{}, time.Time{}, job1, func(context.Context, events.Event) error { return nil })
		if n == len(evs1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit holds %d of job 1's %d events", n, len(evs1))
		}
		time.Sleep(10 * time.Millisecond)
	}
	c1.Close() // the broker goes away
	job2 := submit(s1, "bus-down")
	waitDone(s1, job2)
	pending, err := s1.store.PendingOutbox(ctx, 100)
	if err != nil || len(pending) == 0 {
		t.Fatalf("outbox while the bus is down: %d records, %v", len(pending), err)
	}
	sctx, cancel := context.WithTimeout(ctx, waitLimit)
	_ = s1.shutdown(sctx) // closing a Kafka client whose broker is gone may report errors
	cancel()

	env[envEvents] = kfakeURL(t)
	ts := startServer(t, dir, env, testOptions(30*time.Millisecond))
	for _, id := range []string{job1, job2} {
		want := ts.jobEvents(testAdminToken, id)
		var recs auditList
		deadline := time.Now().Add(waitLimit)
		for {
			ts.do("GET", "/api/v1/admin/audit?job_id="+id, testAdminToken, nil, nil).decode(t, &recs)
			if len(recs.Records) >= len(want) || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(recs.Records) != len(want) {
			t.Fatalf("job %s: audit holds %d records, the store %d events", id, len(recs.Records), len(want))
		}
		for i, rec := range recs.Records {
			if rec.Event.ID != want[i].ID {
				t.Errorf("job %s: audit record %d is %s, want %s", id, i, rec.Event.ID, want[i].ID)
			}
		}
	}
	t.Logf("%d events waited in the outbox while the broker was down", len(pending))
}
