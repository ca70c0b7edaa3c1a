package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSimPoolsFlags(t *testing.T) {
	cfg, err := parseConfig([]string{"-sim-pools", "a100-40:2x4:40960, h100-80:1x8:81920:2", "-sim-node-downtime", "10m", "-sim-mixed-precision", "true"}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Sim.Pools
	if len(p) != 2 || p[0].Name != "a100-40" || p[0].Nodes != 2 || p[0].GPUsPerNode != 4 || p[0].GPUMemoryMB != 40960 || p[0].Speed != 0 ||
		p[1].Name != "h100-80" || p[1].Nodes != 1 || p[1].GPUsPerNode != 8 || p[1].GPUMemoryMB != 81920 || p[1].Speed != 2 {
		t.Errorf("pools %+v", p)
	}
	if cfg.Sim.NodeDowntime != 10*time.Minute || !cfg.Sim.MixedPrecision {
		t.Errorf("sim %+v", cfg.Sim)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-sim-pools", "a100"}, `pool "a100": wrong number of fields`},
		{[]string{"-sim-pools", "a:2by4"}, `size "2by4"`},
		{[]string{"-sim-pools", "a:2x4,a:1x1"}, "name used twice"},
		{[]string{"-sim-pools", "a:2x4:12"}, `GPU memory "12"`},
		{[]string{"-sim-pools", "a:2x4:40960:fast"}, `speed "fast"`},
		{[]string{"-sim-node-downtime", "soon"}, `-sim-node-downtime = "soon"`},
		{[]string{"-sim-mixed-precision", "maybe"}, `-sim-mixed-precision = "maybe"`},
	} {
		if _, err := parseConfig(c.args, nil, io.Discard); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}

// The server's simulated cluster takes its pools from HORIZONS_SIM_POOLS:
// the usage endpoint lists every GPU with its pool's memory.
func TestServerSimPools(t *testing.T) {
	env := map[string]string{envAdminToken: testAdminToken, envSimPools: "a100-40:1x2:40960,h100-80:1x4:81920:2"}
	ts := startServer(t, t.TempDir(), env, testOptions(-1))
	r := ts.do("GET", "/api/v1/cluster/usage", testAdminToken, nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("usage: %d %s", r.status, r.body)
	}
	var u clusterUsage
	r.decode(t, &u)
	if len(u.Backends) != 1 || len(u.Backends[0].GPUs) != 6 {
		t.Fatalf("usage %+v, want 6 GPUs", u)
	}
	mem := map[string]int{}
	for _, g := range u.Backends[0].GPUs {
		mem[g.Node] = g.MemoryTotalMB
	}
	if mem["node-0"] != 40960 || mem["node-1"] != 81920 {
		t.Errorf("GPU memory by node %v", mem)
	}
}
