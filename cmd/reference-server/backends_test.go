package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/agents/pipeline"
	"github.com/cosmic-horizons/horizons/events"
)

const fakeSlurmToken = "eyJhbGciOiJIUzI1NiJ9.fake-slurm-token-4b1d.sig"

func TestBackendFlags(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	os.WriteFile(tokFile, []byte("SLURM_JWT="+fakeSlurmToken+"\n"), 0o600)
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the error; nil means no error
	}{
		{"default sim", nil, nil, nil},
		{"local by env", nil, map[string]string{envBackend: "local"}, nil},
		{"unknown", []string{"-backend", "tapis-x"}, nil, []string{`-backend = "tapis-x"`, "local, sim, slurm"}},
		{"slurm without settings", []string{"-backend", "slurm"}, nil, []string{"-slurm-url", "-slurm-user", envSlurmToken}},
		{"slurm bad url", []string{"-backend", "slurm", "-slurm-url", "ftp://x", "-slurm-user", "root"}, map[string]string{envSlurmToken: fakeSlurmToken}, []string{`-slurm-url = "ftp://x"`}},
		{"slurm url with password", []string{"-backend", "slurm", "-slurm-url", "http://root:hunter2@h:1", "-slurm-user", "root"}, map[string]string{envSlurmToken: fakeSlurmToken}, []string{"must not carry credentials"}},
		{"slurm missing token file", []string{"-backend", "slurm", "-slurm-url", "http://h:1", "-slurm-user", "root", "-slurm-token-file", filepath.Join(dir, "nope")}, nil, []string{"-slurm-token-file", "nope"}},
		{"slurm relative workdir", []string{"-backend", "slurm", "-slurm-url", "http://h:1", "-slurm-user", "root", "-slurm-workdir", "rel/dir"}, map[string]string{envSlurmTokenFile: tokFile}, []string{`-slurm-workdir = "rel/dir"`}},
		{"slurm api", []string{"-backend", "slurm", "-slurm-url", "http://h:1", "-slurm-user", "root", "-slurm-api-version", "v0.0.40"}, map[string]string{envSlurmToken: fakeSlurmToken}, []string{`-slurm-api-version = "v0.0.40"`}},
		{"slurm gpus", []string{"-slurm-gpus", "-1"}, nil, []string{`-slurm-gpus = "-1"`}},
		{"slurm ok by env", nil, map[string]string{envBackend: "slurm", envSlurmURL: "http://127.0.0.1:6820", envSlurmUser: "root", envSlurmTokenFile: tokFile}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parseConfig(c.args, func(k string) string { return c.env[k] }, io.Discard)
			if c.want == nil {
				if err != nil {
					t.Fatalf("parseConfig: %v", err)
				}
				want := c.env[envBackend]
				if want == "" {
					want = defaultBackend
				}
				if cfg.Backend.Kind != want {
					t.Fatalf("backend %q, want %q", cfg.Backend.Kind, want)
				}
				return
			}
			if err == nil {
				t.Fatalf("parseConfig accepted %v", c.args)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			for _, secret := range []string{fakeSlurmToken, "hunter2"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows a secret", err)
				}
			}
		})
	}
}

func TestTokenFileRefresh(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	os.WriteFile(p, []byte("first-token\n"), 0o600)
	f := &tokenFile{path: p}
	if tok, err := f.get(context.Background()); err != nil || tok != "first-token" {
		t.Fatalf("get = %q, %v", tok, err)
	}
	os.WriteFile(p, []byte("SLURM_JWT=second-token-longer\n"), 0o600)
	if tok, err := f.get(context.Background()); err != nil || tok != "second-token-longer" {
		t.Fatalf("after re-mint get = %q, %v; want the new token", tok, err)
	}
	os.Remove(p)
	if _, err := f.get(context.Background()); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("missing file: %v, want an error naming it", err)
	}
}

// TestSlurmBackendStartupErrors: bad settings stop the server at start-up
// with a message naming the setting, and the token shows nowhere.
func TestSlurmBackendStartupErrors(t *testing.T) {
	type tc struct {
		name string
		env  map[string]string
		want []string
	}
	cases := []tc{{"wrong url", map[string]string{envSlurmURL: "http://127.0.0.1:1", envSlurmUser: "root", envSlurmToken: fakeSlurmToken},
		[]string{"-slurm-url http://127.0.0.1:1", "unavailable"}}}
	if l, ok := slurmLive(t, false); ok {
		cases = append(cases,
			tc{"unknown partition", map[string]string{envSlurmURL: l.url, envSlurmUser: l.user, envSlurmToken: l.token, envSlurmPartition: "gpu-nowhere"},
				[]string{`-slurm-partition "gpu-nowhere"`, "does not exist", "debug"}},
			tc{"forged token", map[string]string{envSlurmURL: l.url, envSlurmUser: l.user, envSlurmToken: fakeSlurmToken},
				[]string{"-slurm-url " + l.url}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.env[envBackend] = "slurm"
			logs := &syncBuffer{}
			out := &syncBuffer{}
			cfg, err := parseConfig([]string{"-addr", "127.0.0.1:0", "-data", t.TempDir()}, func(k string) string { return c.env[k] }, out)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err = runConfig(ctx, cfg, out, serverOptions{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			if err == nil {
				t.Fatal("server started with bad Slurm settings")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("start-up error %q does not mention %q", err, w)
				}
			}
			for where, s := range map[string]string{"error": err.Error(), "logs": logs.String(), "stdout": out.String()} {
				if strings.Contains(s, fakeSlurmToken) || (c.env[envSlurmToken] != "" && strings.Contains(s, c.env[envSlurmToken])) {
					t.Errorf("the Slurm token appears in the %s: %s", where, s)
				}
			}
		})
	}
}

type slurmEnv struct{ url, user, token, tokenFile, partition string }

// slurmLive reads the cluster scripts/slurm-cluster.sh describes. Without
// HORIZONS_SLURM_URL it skips (required) or reports false, except under
// HORIZONS_REQUIRE_SERVICES=1, where it fails.
func slurmLive(t *testing.T, required bool) (slurmEnv, bool) {
	t.Helper()
	l := slurmEnv{url: os.Getenv(envSlurmURL), user: os.Getenv(envSlurmUser), token: os.Getenv(envSlurmToken),
		tokenFile: os.Getenv(envSlurmTokenFile), partition: os.Getenv(envSlurmPartition)}
	if l.url == "" {
		msg := `HORIZONS_SLURM_URL is not set: start a cluster with eval "$(scripts/slurm-cluster.sh start)"`
		if os.Getenv("HORIZONS_REQUIRE_SERVICES") == "1" {
			t.Fatal(msg + " (HORIZONS_REQUIRE_SERVICES=1)")
		}
		if required {
			t.Skip(msg)
		}
		return l, false
	}
	if l.user == "" {
		l.user = "root"
	}
	if l.token == "" {
		tok, err := readTokenFile(l.tokenFile)
		if err != nil {
			t.Fatalf("%s = %q: %v", envSlurmTokenFile, l.tokenFile, err)
		}
		l.token = tok
	}
	return l, true
}

// TestSlurmEndToEnd runs a job through the whole server on real Slurm: the
// REST API submits it, the orchestrator places it on the slurm backend,
// the batch job runs the agent runner (built here), and the job completes.
// The server's logs, its answers and the job's events never carry the
// token.
func TestSlurmEndToEnd(t *testing.T) {
	l, _ := slurmLive(t, true)
	bin := filepath.Join(t.TempDir(), "horizons-agent")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/cosmic-horizons/horizons/cmd/horizons-agent").CombinedOutput(); err != nil {
		t.Fatalf("go build horizons-agent: %v\n%s", err, out)
	}
	work, err := os.MkdirTemp("", "horizons-server-slurm-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(work, 0o777)
	t.Cleanup(func() { os.RemoveAll(work) })
	env := map[string]string{envAdminToken: testAdminToken, envBackend: "slurm", envSlurmURL: l.url, envSlurmUser: l.user,
		envSlurmPartition: l.partition, envSlurmRunner: bin + " run", envSlurmWorkDir: work}
	if l.tokenFile != "" {
		env[envSlurmTokenFile] = l.tokenFile
	} else {
		env[envSlurmToken] = l.token
	}
	ts := startServer(t, t.TempDir(), env, testOptions(-1))
	ok, r := ts.submit(testAdminToken, map[string]any{"agent": "alphacal", "dataset_id": "VLASS2.1.sb40.eb41", "params": map[string]any{"flagger": "mad"}}, nil)
	if r.status != 201 && r.status != 200 {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	bad, r := ts.submit(testAdminToken, map[string]any{"agent": "image-reconstruction", "dataset_id": "VLASS2.1.sb40.eb42", "params": map[string]any{"image_size": 64}}, nil)
	if r.status != 201 && r.status != 200 {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	done := func(j jobJSON) bool {
		return j.State == "COMPLETED" || j.State == "FAILED" || j.State == "CANCELLED"
	}
	j := ts.waitJob(testAdminToken, ok.ID, done)
	if j.State != "COMPLETED" || j.Backend != "slurm" || j.Progress != 100 {
		t.Fatalf("alphacal job on slurm: %+v\nlogs:\n%s", j, ts.logs.String())
	}
	j2 := ts.waitJob(testAdminToken, bad.ID, done)
	if j2.State != "COMPLETED" || j2.Backend != "slurm" {
		t.Errorf("imaging job on slurm: %+v", j2)
	}
	evs := ts.jobEvents(testAdminToken, ok.ID)
	var types []string
	for _, e := range evs {
		types = append(types, string(e.Type))
	}
	if !strings.Contains(strings.Join(types, ","), "job.running") || types[len(types)-1] != "job.completed" {
		t.Errorf("events %v, want job.running then job.completed last", types)
	}
	// Slurm really ran it: the runner's result and artifacts are in the
	// work directory.
	results, _ := filepath.Glob(filepath.Join(work, "horizons-*.result.json"))
	if len(results) < 2 {
		t.Errorf("work dir holds %d result files, want 2", len(results))
	}
	for _, f := range results {
		b, _ := os.ReadFile(f)
		var doc struct {
			Summary string `json:"summary"`
		}
		if json.Unmarshal(b, &doc) != nil || doc.Summary == "" {
			t.Errorf("%s: %s, want the agent's output", f, b)
		}
	}
	all := ts.logs.String() + ts.stdout.String() + string(ts.do("GET", "/api/v1/jobs", testAdminToken, nil, nil).body)
	for _, id := range []string{ok.ID, bad.ID} {
		all += string(ts.do("GET", "/api/v1/jobs/"+id+"/events", testAdminToken, nil, nil).body)
	}
	if !strings.Contains(all, "slurm backend ready") {
		t.Error("no start-up line for the slurm backend in the logs")
	}
	if strings.Contains(all, l.token) || strings.Contains(all, l.token[len(l.token)-16:]) {
		t.Error("the Slurm token appears in the logs, answers or events")
	}
}

// TestLocalBackendEndToEnd: -backend local runs the real agents in the
// server's process.
func TestLocalBackendEndToEnd(t *testing.T) {
	ts := startServer(t, t.TempDir(), map[string]string{envAdminToken: testAdminToken, envBackend: "local", envLocalWorkers: "2"}, testOptions(-1))
	j, r := ts.submit(testAdminToken, map[string]any{"agent": "anomaly-detection", "dataset_id": "VLASS1.2.ql.T10t12"}, nil)
	if r.status != 201 && r.status != 200 {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	j = ts.waitJob(testAdminToken, j.ID, func(j jobJSON) bool {
		return j.State == "COMPLETED" || j.State == "FAILED" || j.State == "CANCELLED"
	})
	if j.State != "COMPLETED" || j.Backend != "local" || j.Progress != 100 {
		t.Fatalf("job on -backend local: %+v", j)
	}
}

// TestSlurmPipelineStages: the multi-stage pipeline runs as one Slurm job;
// the runner's progress file carries its stage notes, so the stage changes
// arrive as job.progress events as they do on the local backend.
func TestSlurmPipelineStages(t *testing.T) {
	l, _ := slurmLive(t, true)
	bin := filepath.Join(t.TempDir(), "horizons-agent")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/cosmic-horizons/horizons/cmd/horizons-agent").CombinedOutput(); err != nil {
		t.Fatalf("go build horizons-agent: %v\n%s", err, out)
	}
	work, err := os.MkdirTemp("", "horizons-server-slurm-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(work, 0o777)
	t.Cleanup(func() { os.RemoveAll(work) })
	ts := startServer(t, t.TempDir(), map[string]string{envAdminToken: testAdminToken, envBackend: "slurm", envSlurmURL: l.url,
		envSlurmUser: l.user, envSlurmToken: l.token, envSlurmPartition: l.partition, envSlurmRunner: bin + " run", envSlurmWorkDir: work}, testOptions(-1))
	job, r := ts.submit(testAdminToken, map[string]any{"agent": "pipeline", "dataset_id": "VLASS2.1.T10t01", "params": map[string]any{"image_size": 128}}, nil)
	if r.status != 201 && r.status != 200 {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	j := ts.waitJob(testAdminToken, job.ID, func(j jobJSON) bool {
		return j.State == "COMPLETED" || j.State == "FAILED" || j.State == "CANCELLED"
	})
	if j.State != "COMPLETED" || j.Backend != "slurm" {
		t.Fatalf("pipeline job on slurm: %+v\nlogs:\n%s", j, ts.logs.String())
	}
	stages := map[string]bool{}
	for _, e := range ts.jobEvents(testAdminToken, job.ID) {
		if e.Type != events.JobProgress {
			continue
		}
		var d events.JobData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.Stage != "" {
			stages[d.Stage] = true
		}
	}
	if !stages[pipeline.StageImaging] {
		t.Errorf("job.progress stages %v: want the imaging stage", stages)
	}
}
