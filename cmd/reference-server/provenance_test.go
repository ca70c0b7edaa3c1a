package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/internal/pgtest"
	"github.com/cosmic-horizons/horizons/orchestrator"
)

// GET /api/v1/jobs/{id}/provenance returns the audit record to the owner
// and admins, 404 to anyone else.
func TestProvenanceEndpoint(t *testing.T) {
	ts := startServer(t, t.TempDir(), adminEnv, testOptions(50*time.Millisecond))
	alice := ts.createUser(testAdminToken, "alice", "user")
	bob := ts.createUser(testAdminToken, "bob", "user")
	j, r := ts.submit(alice.Token, map[string]any{"agent": "alphacal", "dataset_id": "VLASS2.1/T01", "gpus": 1, "priority": 3, "params": map[string]any{"iterations": 2}}, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	ts.waitJob(alice.Token, j.ID, func(j jobJSON) bool { return j.State == "COMPLETED" })

	r = ts.do("GET", "/api/v1/jobs/"+j.ID+"/provenance", alice.Token, nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("provenance: %d %s", r.status, r.body)
	}
	var p orchestrator.Provenance
	r.decode(t, &p)
	var spec map[string]any
	if err := json.Unmarshal(p.Spec, &spec); err != nil {
		t.Fatalf("spec %s: %v", p.Spec, err)
	}
	if p.JobID != j.ID || p.SubmittedBy != alice.ID || spec["dataset_id"] != "VLASS2.1/T01" || spec["priority"] != 3.0 || !strings.HasPrefix(p.AgentVersion, "alphacal@sha256:") {
		t.Fatalf("provenance = %s", r.body)
	}
	if len(p.Attempts) != 1 || p.Attempts[0].Backend != "clock" || p.Attempts[0].TaskID != j.ID+"-1" || p.Attempts[0].ExternalID == "" || p.Attempts[0].Outcome != orchestrator.StateCompleted || p.Backend != "clock" || p.ExternalID != p.Attempts[0].ExternalID {
		t.Fatalf("attempts = %+v (backend %s/%s)", p.Attempts, p.Backend, p.ExternalID)
	}
	if p.State != orchestrator.StateCompleted || len(p.Outputs) == 0 || p.Events < 4 {
		t.Fatalf("state %s outputs %s events %d", p.State, p.Outputs, p.Events)
	}
	if r := ts.do("GET", "/api/v1/jobs/"+j.ID+"/provenance", testAdminToken, nil, nil); r.status != http.StatusOK {
		t.Fatalf("admin: %d", r.status)
	}
	if r := ts.do("GET", "/api/v1/jobs/"+j.ID+"/provenance", bob.Token, nil, nil); r.status != http.StatusNotFound {
		t.Fatalf("another user's job: %d, want 404", r.status)
	}
	if r := ts.do("GET", "/api/v1/jobs/no-such-job/provenance", alice.Token, nil, nil); r.status != http.StatusNotFound {
		t.Fatalf("unknown job: %d, want 404", r.status)
	}
	if r := ts.do("GET", "/api/v1/jobs/"+j.ID+"/provenance", "", nil, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", r.status)
	}
}

// Two servers on one PostgreSQL job store (-store through HORIZONS_STORE,
// password in the URL) share the jobs: either one can read any job, every
// job completes, and the password appears in no output.
func TestTwoServersShareOnePostgresStore(t *testing.T) {
	dsn, _ := pgtest.Schema(t, "refsrv_store")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "pw-Never-Logged-42" // trust auth accepts any password
	u.User = url.UserPassword(u.User.Username(), secret)
	env := map[string]string{envAdminToken: testAdminToken, envStore: u.String()}
	a := startServer(t, t.TempDir(), env, testOptions(30*time.Millisecond))
	b := startServer(t, t.TempDir(), env, testOptions(30*time.Millisecond))
	var ids []string
	for i := range 20 {
		ts := a
		if i%2 == 1 {
			ts = b
		}
		j, r := ts.submit(testAdminToken, map[string]any{"agent": "alphacal", "dataset_id": fmt.Sprintf("VLASS2.1/T%02d", i), "gpus": 1}, nil)
		if r.status != http.StatusCreated {
			t.Fatalf("submit %d: %d %s", i, r.status, r.body)
		}
		ids = append(ids, j.ID)
	}
	replicas := map[string]bool{}
	for i, id := range ids {
		other := b
		if i%2 == 1 {
			other = a
		}
		other.waitJob(testAdminToken, id, func(j jobJSON) bool { return j.State == "COMPLETED" })
		var p orchestrator.Provenance
		r := other.do("GET", "/api/v1/jobs/"+id+"/provenance", testAdminToken, nil, nil)
		r.decode(t, &p)
		for _, at := range p.Attempts {
			replicas[at.Replica] = true
		}
	}
	if len(replicas) != 2 {
		t.Fatalf("attempts placed by replicas %v; want both servers", replicas)
	}
	for name, ts := range map[string]*testServer{"a": a, "b": b} {
		if out := ts.stdout.String() + ts.logs.String(); strings.Contains(out, secret) {
			t.Fatalf("server %s printed the store password", name)
		} else if !strings.Contains(out, "job store open") {
			t.Fatalf("server %s did not log its job store", name)
		}
	}
}

// A bad -store value is refused naming the variable, without the password.
func TestStoreURLErrors(t *testing.T) {
	for _, raw := range []string{"mysql://u:hunter2hunter@h/db", "postgres://u:hunter2hunter@/db", "sqlite://"} {
		_, err := parseConfig(nil, func(k string) string {
			if k == envStore {
				return raw
			}
			return ""
		}, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), envStore) || strings.Contains(err.Error(), "hunter2hunter") {
			t.Errorf("%s: err = %v; want an error naming %s without the password", raw, err, envStore)
		}
	}
	cfg, err := parseConfig([]string{"-store", "sqlite:///tmp/x/jobs.db"}, nil, &strings.Builder{})
	if err != nil || cfg.Store != "sqlite:///tmp/x/jobs.db" {
		t.Fatalf("-store sqlite = %q, %v", cfg.Store, err)
	}
}
