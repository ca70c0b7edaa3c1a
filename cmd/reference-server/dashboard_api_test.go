package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestClusterUsage: on the simulated cluster every GPU is listed, a
// running job shows as busy GPUs, and only an admin sees which task holds
// a GPU.
func TestClusterUsage(t *testing.T) {
	ts := startServer(t, t.TempDir(), map[string]string{envAdminToken: testAdminToken, envSimSpeedUp: "1"}, testOptions(-1))
	alice := ts.createUser(testAdminToken, "alice", "user")
	j, r := ts.submit(alice.Token, map[string]any{"agent": "alphacal", "dataset_id": "VLASS-usage", "gpus": 2}, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	ts.waitJob(alice.Token, j.ID, func(j jobJSON) bool { return j.State == "RUNNING" })
	for _, who := range []struct {
		tok       string
		seesTasks bool
	}{{testAdminToken, true}, {alice.Token, false}} {
		r := ts.do("GET", "/api/v1/cluster/usage", who.tok, nil, nil)
		if r.status != http.StatusOK {
			t.Fatalf("usage: %d %s", r.status, r.body)
		}
		var u clusterUsage
		r.decode(t, &u)
		if len(u.Backends) != 1 || u.Backends[0].Error != "" || len(u.Backends[0].GPUs) != defaultSimNodes*defaultSimGPUs {
			t.Fatalf("usage %+v", u)
		}
		busy, tasks := 0, 0
		for _, g := range u.Backends[0].GPUs {
			if g.Utilization > 0 {
				busy++
			}
			if g.TaskID != "" {
				tasks++
			}
		}
		if busy != 2 {
			t.Errorf("%d busy GPUs while one 2-GPU job runs", busy)
		}
		if who.seesTasks != (tasks == 2) || (!who.seesTasks && tasks != 0) {
			t.Errorf("admin=%v sees %d task ids", who.seesTasks, tasks)
		}
	}
}

func TestSkyConfig(t *testing.T) {
	cfg, err := parseConfig(nil, nil, io.Discard)
	if err != nil || cfg.AladinURL != defaultAladinURL || cfg.SkySurvey != defaultSkySurvey {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	cfg, err = parseConfig([]string{"-aladin-url", "", "-sky-survey", "P/DSS2/color"}, nil, io.Discard)
	if err != nil || cfg.AladinURL != "" || cfg.SkySurvey != "P/DSS2/color" {
		t.Fatalf("aladin off: %+v %v", cfg, err)
	}
	for _, args := range [][]string{{"-aladin-url", "javascript:alert(1)"}, {"-aladin-url", "ftp://x/a.js"}, {"-sky-survey", "a b"}, {"-sky-survey", ""}} {
		if _, err := parseConfig(args, nil, io.Discard); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: %v, want an error naming %s", args, err, args[0])
		}
	}
	if _, err := parseConfig(nil, func(k string) string { return map[string]string{envAladinURL: "nope"}[k] }, io.Discard); err == nil {
		t.Errorf("%s=nope accepted", envAladinURL)
	}
}
