package slurm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/slurm"
)

// schemaChecker checks a JSON value against the OpenAPI document's schema:
// every object key must be a declared property and every value must have
// the declared JSON type (following $ref).
type schemaChecker struct {
	schemas map[string]map[string]any
	errs    []string
}

func loadSpec(t *testing.T, file string) (*schemaChecker, map[string]any) {
	t.Helper()
	var doc map[string]any
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	c := &schemaChecker{schemas: map[string]map[string]any{}}
	for k, v := range doc["components"].(map[string]any)["schemas"].(map[string]any) {
		c.schemas[k] = v.(map[string]any)
	}
	return c, doc
}

func (c *schemaChecker) resolve(s map[string]any) map[string]any {
	for {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		s = c.schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
	}
}

func (c *schemaChecker) check(where string, s map[string]any, v any) {
	s = c.resolve(s)
	typ, _ := s["type"].(string)
	switch x := v.(type) {
	case map[string]any:
		if typ != "object" && typ != "" {
			c.errs = append(c.errs, fmt.Sprintf("%s: object where the spec has %s", where, typ))
			return
		}
		props, _ := s["properties"].(map[string]any)
		if props == nil {
			return // free-form object (v0.0.38 environment)
		}
		for k, val := range x {
			ps, ok := props[k].(map[string]any)
			if !ok {
				c.errs = append(c.errs, fmt.Sprintf("%s.%s: not a property in the spec", where, k))
				continue
			}
			c.check(where+"."+k, ps, val)
		}
	case []any:
		if typ != "array" {
			c.errs = append(c.errs, fmt.Sprintf("%s: array where the spec has %s", where, typ))
			return
		}
		items, _ := s["items"].(map[string]any)
		for i, e := range x {
			c.check(fmt.Sprintf("%s[%d]", where, i), items, e)
		}
	case string:
		if typ != "string" {
			c.errs = append(c.errs, fmt.Sprintf("%s: string where the spec has %s", where, typ))
		}
	case float64:
		if typ != "integer" && typ != "number" {
			c.errs = append(c.errs, fmt.Sprintf("%s: number where the spec has %s", where, typ))
		}
	case bool:
		if typ != "boolean" {
			c.errs = append(c.errs, fmt.Sprintf("%s: boolean where the spec has %s", where, typ))
		}
	}
}

// submitBody captures the body the driver posts for a task.
func submitBody(t *testing.T, version string, task backends.Task) map[string]any {
	t.Helper()
	var body map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.TrimSuffix(r.URL.Path, "/") == "/slurm/"+version+"/jobs" {
			// The look-up for an earlier submission of the task.
			w.Write([]byte(`{"meta":{},"errors":[],"jobs":[]}`))
			return
		}
		if r.URL.Path != "/slurm/"+version+"/job/submit" {
			t.Errorf("path %s", r.URL.Path)
		}
		json.NewDecoder(r.Body).Decode(&body)
		w.Write([]byte(`{"meta":{},"errors":[],"job_id":12,"step_id":"batch","job_submit_user_msg":""}`))
	}))
	defer srv.Close()
	d, err := slurm.New(&slurm.Config{URL: srv.URL, UserName: user, Token: token, WorkDir: "/w", Partition: "gpu",
		APIVersion: version, MaxGPUs: 8})
	if err != nil {
		t.Fatal(err)
	}
	h, err := d.Submit(context.Background(), task)
	if err != nil || h.ExternalID != "12" {
		t.Fatalf("submit: %+v, %v", h, err)
	}
	return body
}

func TestSubmitBodiesMatchTheSpecs(t *testing.T) {
	for _, c := range []struct{ version, spec, schema string }{
		{"v0.0.38", "openapi-v0.0.38.json", "v0.0.38_job_submission"},
		{"v0.0.41", "openapi-v0.0.41.json", "v0.0.41_job_submit_req"},
	} {
		t.Run(c.version, func(t *testing.T) {
			body := submitBody(t, c.version, task)
			sc, doc := loadSpec(t, c.spec)
			// The request body schema of POST .../job/submit.
			rb := doc["paths"].(map[string]any)["/slurm/"+c.version+"/job/submit"].(map[string]any)["post"].(map[string]any)["requestBody"].(map[string]any)
			schema := rb["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
			if ref := schema["$ref"]; ref != "#/components/schemas/"+c.schema {
				t.Fatalf("request schema %v", ref)
			}
			sc.check("body", schema, body)
			for _, e := range sc.errs {
				t.Error(e)
			}
			job := body["job"].(map[string]any)
			switch c.version {
			case "v0.0.38":
				if _, ok := job["environment"].(map[string]any); !ok || body["script"] == nil || job["gres"] != "gpu:2" {
					t.Errorf("v0.0.38 body %v", body)
				}
			case "v0.0.41":
				env, _ := job["environment"].([]any)
				if len(env) < 3 || job["script"] == nil || body["script"] != nil || job["tres_per_node"] != "gres/gpu:2" ||
					job["time_limit"].(map[string]any)["number"] != 91.0 {
					t.Errorf("v0.0.41 body %v", body)
				}
				for _, e := range env {
					if !strings.Contains(e.(string), "=") {
						t.Errorf("environment entry %q is not K=V", e)
					}
				}
			}
		})
	}
	// The checker itself rejects a wrong shape.
	sc, doc := loadSpec(t, "openapi-v0.0.41.json")
	_ = doc
	sc.check("body", map[string]any{"$ref": "#/components/schemas/v0.0.41_job_submit_req"},
		map[string]any{"job": map[string]any{"environment": map[string]any{"A": "b"}, "time_limit": 5.0, "bogus": true}})
	if len(sc.errs) != 3 {
		t.Errorf("checker found %v, want 3 problems", sc.errs)
	}
}

func TestDecodeV41Job(t *testing.T) {
	// Shapes from the v0.0.41 schema: job_state a flag array, exit_code
	// {status, return_code, signal}, times {set, infinite, number}.
	cases := []struct {
		rec   string
		state backends.TaskState
		exit  int
		msg   string
	}{
		{`{"job_id":5,"job_state":["FAILED"],"state_reason":"NonZeroExitCode","exit_code":{"status":["ERROR"],"return_code":{"set":true,"infinite":false,"number":3},"signal":{"id":{"set":false,"infinite":false,"number":0},"name":""}},"start_time":{"set":true,"infinite":false,"number":1795719890},"end_time":{"set":true,"infinite":false,"number":1795719950}}`,
			backends.TaskFailed, 3, "exit code 3"},
		{`{"job_id":6,"job_state":["CANCELLED"],"exit_code":{"status":["SIGNALED"],"return_code":{"set":false,"infinite":false,"number":0},"signal":{"id":{"set":true,"infinite":false,"number":9},"name":"KILL"}},"start_time":{"set":true,"number":1795719890},"end_time":{"set":true,"number":1795719891}}`,
			backends.TaskCancelled, 137, "killed by signal 9"},
		{`{"job_id":7,"job_state":["COMPLETED"],"exit_code":{"status":["SUCCESS"],"return_code":{"set":true,"number":0}},"start_time":{"set":true,"number":1795719890},"end_time":{"set":true,"number":1795719900},"time_limit":{"set":false,"infinite":true,"number":0}}`,
			backends.TaskCompleted, 0, ""},
		{`{"job_id":8,"job_state":["RUNNING","COMPLETING"],"start_time":{"set":true,"number":1795719890},"end_time":{"set":true,"number":1827255890}}`,
			backends.TaskRunning, -1, ""},
		{`{"job_id":9,"job_state":["PENDING"],"state_reason":"Priority","start_time":{"set":false,"number":0}}`,
			backends.TaskPending, -1, "pending: Priority"},
	}
	for _, c := range cases {
		var j slurm.Job
		if err := json.Unmarshal([]byte(c.rec), &j); err != nil {
			t.Fatalf("%s: %v", c.rec, err)
		}
		st := slurm.JobStatus(j)
		if st.State != c.state || !strings.Contains(st.Message, c.msg) {
			t.Errorf("job %d: %s %q, want %s %q", j.JobID, st.State, st.Message, c.state, c.msg)
		}
		if c.exit >= 0 && (st.ExitCode == nil || *st.ExitCode != c.exit) {
			t.Errorf("job %d: exit %v, want %d", j.JobID, st.ExitCode, c.exit)
		}
		if c.state.Terminal() && !st.StartedAt.Equal(time.Unix(1795719890, 0)) {
			t.Errorf("job %d: started %v", j.JobID, st.StartedAt)
		}
		if c.state == backends.TaskPending && !st.StartedAt.IsZero() {
			t.Errorf("pending job has a start time %v", st.StartedAt)
		}
	}
	var j slurm.Job
	if err := json.Unmarshal([]byte(`{"job_id":1,"time_limit":{"set":"yes"}}`), &j); err == nil || !strings.Contains(err.Error(), "time_limit") {
		t.Errorf("bad time_limit: %v", err)
	}
}

func TestDetectVersion(t *testing.T) {
	for _, c := range []struct {
		spec, want string
	}{{"openapi-v0.0.38.json", "v0.0.38"}, {"openapi-v0.0.41.json", "v0.0.41"}} {
		doc, err := os.ReadFile(filepath.Join("testdata", c.spec))
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			paths = append(paths, r.URL.Path)
			if r.Header.Get("X-SLURM-USER-TOKEN") != token {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			switch {
			case r.URL.Path == "/openapi/v3":
				w.Write(doc)
			case strings.HasSuffix(r.URL.Path, "/job/submit"):
				w.Write([]byte(`{"meta":{},"errors":[],"job_id":3}`))
			case strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/jobs"):
				w.Write([]byte(`{"meta":{},"errors":[],"jobs":[]}`))
			default:
				w.WriteHeader(http.StatusNotFound)
			}
		}))
		d, err := slurm.New(&slurm.Config{URL: srv.URL, UserName: user, Token: token, WorkDir: "/w", APIVersion: "auto", MaxGPUs: 4})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Submit(context.Background(), task); err != nil {
			t.Fatal(err)
		}
		srv.Close()
		jobs := "/slurm/" + c.want + "/jobs"
		if c.want != "v0.0.38" {
			jobs += "/"
		}
		want := []string{"/openapi/v3", jobs, "/slurm/" + c.want + "/job/submit"}
		if strings.Join(paths, " ") != strings.Join(want, " ") {
			t.Errorf("%s: requests %v, want %v", c.spec, paths, want)
		}
	}
}
