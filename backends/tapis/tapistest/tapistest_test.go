package tapistest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/cosmic-horizons/horizons/backends/tapis/tapistest"
)

// recorder is a TB that keeps the errors instead of failing the test, so
// the test can check that the emulator rejects what the spec rejects.
type recorder struct {
	*testing.T
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.errs
	r.errs = nil
	return e
}

func do(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Tapis-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var env map[string]any
	json.Unmarshal(b, &env)
	return resp.StatusCode, env
}

func TestRejectsWhatTheSpecRejects(t *testing.T) {
	rec := &recorder{T: t}
	srv := tapistest.New(rec, nil)
	tok := srv.IssueToken(3600e9)
	good := `{"name":"horizons-a","appId":"horizons-agent","appVersion":"1.0","parameterSet":{"envVariables":[{"key":"HORIZONS_TASK","value":"{\"id\":\"a\",\"agent\":\"steps\"}"}]}}`
	code, env := do(t, "POST", srv.URL+"/v3/jobs/submit", tok, good)
	if code != 200 || env["status"] != "success" || len(rec.take()) != 0 {
		t.Fatalf("good submit: %d %v", code, env)
	}
	bad := []struct{ name, method, path, token, body, want string }{
		{"missing required appVersion", "POST", "/v3/jobs/submit", tok, `{"name":"x","appId":"horizons-agent"}`, "appVersion"},
		{"misspelt field", "POST", "/v3/jobs/submit", tok, `{"name":"x","appId":"horizons-agent","appVersion":"1.0","maxMinuets":5}`, "maxMinuets"},
		{"wrong type", "POST", "/v3/jobs/submit", tok, `{"name":"x","appId":"horizons-agent","appVersion":"1.0","nodeCount":"one"}`, "nodeCount"},
		{"env pair with a bad field", "POST", "/v3/jobs/submit", tok, `{"name":"x","appId":"horizons-agent","appVersion":"1.0","parameterSet":{"envVariables":[{"name":"A","value":"1"}]}}`, "name"},
		{"no token", "GET", "/v3/jobs/list", "", "", "X-Tapis-Token"},
		{"bad query type", "GET", "/v3/jobs/list?limit=ten", tok, "", "limit"},
		{"unknown operation", "GET", "/v3/jobs/frobnicate/now/please", tok, "", "not an operation"},
		{"token grant with a bad field", "POST", "/v3/oauth2/tokens", "", `{"username":"horizons","password":"x","grant_type":"password","scope":"all"}`, "scope"},
	}
	for _, c := range bad {
		code, _ := do(t, c.method, srv.URL+c.path, c.token, c.body)
		errs := rec.take()
		if code/100 != 4 || len(errs) == 0 || !strings.Contains(strings.Join(errs, "\n"), c.want) {
			t.Errorf("%s: status %d, reported %q; want a 4xx and a violation naming %q", c.name, code, errs, c.want)
		}
	}
	if len(srv.Violations()) < len(bad) {
		t.Errorf("%d violations recorded, want at least %d", len(srv.Violations()), len(bad))
	}
}

func TestTokenEndpointAndExpiry(t *testing.T) {
	srv := tapistest.New(t, &tapistest.Config{Username: "u", Password: "p"})
	code, env := do(t, "POST", srv.URL+"/v3/oauth2/tokens", "", `{"username":"u","password":"p","grant_type":"password"}`)
	if code != 201 {
		t.Fatalf("token: %d %v", code, env)
	}
	tok := env["result"].(map[string]any)["access_token"].(map[string]any)["access_token"].(string)
	if code, _ := do(t, "GET", srv.URL+"/v3/jobs/list", tok, ""); code != 200 {
		t.Fatalf("list with a fresh token: %d", code)
	}
	srv.ExpireTokens()
	code, env = do(t, "GET", srv.URL+"/v3/jobs/list", tok, "")
	if code != 401 || !strings.Contains(fmt.Sprint(env["message"]), "EXPIRED") {
		t.Errorf("list with an expired token: %d %v", code, env)
	}
	if code, _ := do(t, "POST", srv.URL+"/v3/oauth2/tokens", "", `{"username":"u","password":"q","grant_type":"password"}`); code != 401 {
		t.Errorf("bad password: %d, want 401", code)
	}
	if srv.TokensIssued() != 1 || srv.Rejected() != 1 {
		t.Errorf("issued %d rejected %d", srv.TokensIssued(), srv.Rejected())
	}
}
