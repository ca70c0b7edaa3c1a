package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/tapis/tapistest"
)

func tapisEnv(srv *tapistest.Server) map[string]string {
	c := srv.Config()
	return map[string]string{
		envTapisURL: srv.URL, envTapisUser: c.Username, envTapisPassword: c.Password,
		envTapisApp: c.AppID, envTapisAppVersion: c.AppVersion, envTapisExecSystem: "tapistest-exec",
	}
}

func parseTapis(t *testing.T, env map[string]string, args ...string) (tapisConfig, error) {
	t.Helper()
	cfg, err := parseConfig(args, func(k string) string { return env[k] }, io.Discard)
	return cfg.Tapis, err
}

func TestTapisFlags(t *testing.T) {
	env := map[string]string{envTapisURL: "https://env.example", envTapisUser: "u", envTapisPassword: "pw-from-env-123",
		envTapisApp: "horizons-agent", envTapisAppVersion: "1.0", envTapisMaxGPUs: "8"}
	c, err := parseTapis(t, env, "-tapis-url", "https://tacc.tapis.io", "-tapis-tenant", "tacc", "-tapis-exec-system", "frontera")
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "https://tacc.tapis.io" || c.Tenant != "tacc" || c.User != "u" || c.App != "horizons-agent" || c.AppVersion != "1.0" ||
		c.ExecSystem != "frontera" || c.MaxGPUs != 8 || c.Password != "pw-from-env-123" {
		t.Errorf("tapis config %+v", c)
	}
	if s := fmt.Sprintf("%v %+v", c, c); strings.Contains(s, "pw-from-env-123") {
		t.Errorf("config prints the password: %s", s)
	}
	if _, err := parseTapis(t, env, "-tapis-max-gpus", "many"); err == nil || !strings.Contains(err.Error(), `-tapis-max-gpus = "many"`) {
		t.Errorf("bad -tapis-max-gpus: %v", err)
	}
	// The password is not a flag.
	if _, err := parseTapis(t, env, "-tapis-password", "x"); err == nil {
		t.Error("-tapis-password was accepted as a flag")
	}
}

func TestOpenTapisStartUpChecks(t *testing.T) {
	srv := tapistest.New(t, nil)
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	good, err := parseTapis(t, tapisEnv(srv))
	if err != nil {
		t.Fatal(err)
	}
	b, err := openTapis(ctx, good, log)
	if err != nil {
		t.Fatalf("openTapis with good settings: %v", err)
	}
	b.Close()
	if srv.TokensIssued() != 1 || srv.Count(http.MethodGet, "/v3/jobs/list") != 1 {
		t.Errorf("start-up check minted %d tokens and listed jobs %d times, want 1 and 1", srv.TokensIssued(), srv.Count(http.MethodGet, "/v3/jobs/list"))
	}

	closed := tapistest.New(t, nil)
	closed.Close()
	cases := []struct {
		name string
		edit func(*tapisConfig)
		want []string
		is   error
	}{
		{"no URL", func(c *tapisConfig) { c.URL = "" }, []string{"-tapis-url", envTapisURL, "-tapis-tenant"}, nil},
		{"no credentials", func(c *tapisConfig) { c.Password = "" }, []string{envTapisPassword, envTapisToken, "environment only"}, nil},
		{"no app version", func(c *tapisConfig) { c.AppVersion = "" }, []string{"-tapis-app-version", envTapisAppVersion}, nil},
		{"bad URL", func(c *tapisConfig) { c.URL = "tacc.tapis.io" }, []string{`field URL is "tacc.tapis.io"`}, nil},
		{"wrong URL", func(c *tapisConfig) { c.URL = closed.URL }, []string{closed.URL, "start-up check failed"}, backends.ErrUnavailable},
		{"wrong password", func(c *tapisConfig) { c.Password = "not-the-password" }, []string{"check Username and the password"}, backends.ErrUnauthorized},
		{"expired token", func(c *tapisConfig) { c.Password, c.Token = "", "tapistest-jwt.expired" }, []string{"TAPIS_SECURITY_JWT_INVALID", "mint a new one"}, backends.ErrUnauthorized},
		{"password without user", func(c *tapisConfig) { c.User = "" }, []string{"-tapis-user", "is empty"}, nil},
	}
	for _, tc := range cases {
		c := good
		tc.edit(&c)
		_, err := openTapis(ctx, c, log)
		if err == nil {
			t.Errorf("%s: openTapis succeeded", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v; want it to mention %q", tc.name, err, w)
			}
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.is)
		}
		for _, secret := range []string{good.Password, "not-the-password", "tapistest-jwt.expired"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: error shows a secret: %v", tc.name, err)
			}
		}
	}
}

// A job runs end to end through the server on the Tapis backend (against
// the spec-checked emulator), and no Tapis secret reaches the logs, the
// API or the job's events.
func TestServerRunsJobOnTapis(t *testing.T) {
	srv := tapistest.New(t, nil)
	tc, err := parseTapis(t, tapisEnv(srv))
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions(-1)
	logs := &syncBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := openTapis(context.Background(), tc, opts.Logger)
	if err != nil {
		t.Fatal(err)
	}
	opts.Backends = []*backends.Backend{b}
	ts := startServer(t, t.TempDir(), adminEnv, opts)
	ok, r := ts.submit(testAdminToken, map[string]any{"agent": "alphacal", "dataset_id": "VLASS2.1.T10t01", "gpus": 1}, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	done := ts.waitJob(testAdminToken, ok.ID, func(j jobJSON) bool { return j.State == "COMPLETED" || j.State == "FAILED" })
	if done.State != "COMPLETED" {
		t.Fatalf("job on tapis ended %+v", done)
	}
	jobs := srv.Jobs()
	if len(jobs) != 1 || !strings.HasPrefix(jobs[0].TaskID, ok.ID) || jobs[0].Status != "FINISHED" {
		t.Errorf("Tapis jobs %+v, want one FINISHED job for task %s-*", jobs, ok.ID)
	}
	if len(jobs) == 1 && srv.Count(http.MethodGet, "/v3/jobs/"+jobs[0].UUID+"/output/download/horizons.result.json") != 1 {
		t.Error("the server did not collect the runner's result file once")
	}
	evs := ts.jobEvents(testAdminToken, ok.ID)
	var all strings.Builder
	for _, e := range evs {
		all.Write(e.Data)
	}
	all.WriteString(logs.String())
	all.Write(ts.getJobRaw(ok.ID))
	for _, tok := range tokensOf(srv) {
		if strings.Contains(all.String(), tok) {
			t.Fatalf("a Tapis token reached the logs, events or API")
		}
	}
	if strings.Contains(all.String(), tc.Password) {
		t.Fatal("the Tapis password reached the logs, events or API")
	}
	if v := srv.Violations(); len(v) != 0 {
		t.Errorf("spec violations: %v", v)
	}
}

// tokensOf lists the tokens the emulator saw.
func tokensOf(srv *tapistest.Server) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range srv.Requests() {
		if r.Token != "" && !seen[r.Token] {
			seen[r.Token] = true
			out = append(out, r.Token)
		}
	}
	return out
}

func (ts *testServer) getJobRaw(id string) []byte {
	ts.t.Helper()
	r := ts.do("GET", "/api/v1/jobs/"+id, testAdminToken, nil, nil)
	if r.status != http.StatusOK {
		ts.t.Fatalf("get job %s: %d %s", id, r.status, r.body)
	}
	return r.body
}

// -backend tapis (here by HORIZONS_BACKEND) selects Tapis with one
// setting: the server starts on it and runs a job; bad settings stop the
// start-up with a message that names what to set.
func TestBackendFlagTapis(t *testing.T) {
	srv := tapistest.New(t, nil)
	env := tapisEnv(srv)
	env[envBackend] = "tapis"
	for k, v := range adminEnv {
		env[k] = v
	}
	ts := startServer(t, t.TempDir(), env, testOptions(-1))
	j, r := ts.submit(testAdminToken, map[string]any{"agent": "image-reconstruction", "dataset_id": "VLASS2.1.T10t01", "gpus": 2}, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	done := ts.waitJob(testAdminToken, j.ID, func(j jobJSON) bool { return j.State == "COMPLETED" || j.State == "FAILED" })
	if done.State != "COMPLETED" || done.Backend != "tapis" {
		t.Fatalf("job ended %+v", done)
	}
	if jobs := srv.Jobs(); len(jobs) != 1 || !strings.Contains(fmt.Sprint(jobs[0].Submit["parameterSet"]), "--gres=gpu:2") {
		t.Errorf("Tapis jobs %+v", jobs)
	}

	// Missing credentials: parseConfig refuses.
	bad := tapisEnv(srv)
	bad[envBackend] = "tapis"
	delete(bad, envTapisPassword)
	if _, err := parseConfig(nil, func(k string) string { return bad[k] }, io.Discard); err == nil || !strings.Contains(err.Error(), envTapisPassword) {
		t.Errorf("-backend tapis without credentials: %v", err)
	}
	// A wrong password: the server does not start.
	bad[envTapisPassword] = "wrong-password-42"
	bad[envAdminToken] = testAdminToken
	cfg, err := parseConfig([]string{"-addr", "127.0.0.1:0", "-data", t.TempDir()}, func(k string) string { return bad[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	err = runConfig(context.Background(), cfg, io.Discard, testOptions(-1))
	if err == nil || !errors.Is(err, backends.ErrUnauthorized) || !strings.Contains(err.Error(), "start-up check failed") || strings.Contains(err.Error(), "wrong-password-42") {
		t.Errorf("start with a wrong Tapis password = %v", err)
	}
}
