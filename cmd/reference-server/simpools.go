package main

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cosmic-horizons/horizons/backends/simgpu"
)

// Environment variables of the simulated cluster's topology and failure
// options (simgpu Pools, NodeDowntime, MixedPrecision).
const (
	envSimPools          = "HORIZONS_SIM_POOLS"
	envSimNodeDowntime   = "HORIZONS_SIM_NODE_DOWNTIME"
	envSimMixedPrecision = "HORIZONS_SIM_MIXED_PRECISION"
)

// simExtra is the simulated cluster's topology and failure settings.
type simExtra struct {
	// Pools, when set, replaces -sim-nodes and -sim-gpus.
	Pools []simgpu.Pool
	// NodeDowntime keeps a node lost to an injected node loss out of
	// placement this long (modelled time).
	NodeDowntime time.Duration
	// MixedPrecision runs every task in mixed precision.
	MixedPrecision bool
}

// simFlags registers -sim-pools, -sim-node-downtime and
// -sim-mixed-precision; the returned function, called after fs.Parse,
// checks them.
func simFlags(fs *flag.FlagSet, getenv func(string) string) func() (simExtra, error) {
	env := func(k string) string { return strings.TrimSpace(getenv(k)) }
	pools := fs.String("sim-pools", env(envSimPools), "heterogeneous simulated cluster, replacing -sim-nodes/-sim-gpus: comma-separated name:NODESxGPUS[:GPU_MEMORY_MB[:SPEED]], e.g. a100-40:4x8:40960,h100-80:2x8:81920:2 (env "+envSimPools+")")
	downtime := fs.String("sim-node-downtime", env(envSimNodeDowntime), "how long (modelled) a node lost to an injected node loss stays down, failing its other tasks, e.g. 10m; empty or 0 keeps it up (env "+envSimNodeDowntime+")")
	mixed := fs.String("sim-mixed-precision", env(envSimMixedPrecision), "run simulated tasks in mixed precision: true or false (env "+envSimMixedPrecision+")")
	return func() (simExtra, error) {
		var x simExtra
		var err error
		if x.Pools, err = parseSimPools(*pools); err != nil {
			return x, err
		}
		if d := strings.TrimSpace(*downtime); d != "" {
			if x.NodeDowntime, err = time.ParseDuration(d); err != nil || x.NodeDowntime < 0 {
				return x, fmt.Errorf("-sim-node-downtime = %q: want a duration >= 0 such as 10m", d)
			}
		}
		if m := strings.TrimSpace(*mixed); m != "" {
			if x.MixedPrecision, err = strconv.ParseBool(m); err != nil {
				return x, fmt.Errorf("-sim-mixed-precision = %q: want true or false", m)
			}
		}
		return x, nil
	}
}

// parseSimPools reads name:NODESxGPUS[:GPU_MEMORY_MB[:SPEED]],...; ""
// means none.
func parseSimPools(spec string) ([]simgpu.Pool, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, nil
	}
	var pools []simgpu.Pool
	seen := map[string]bool{}
	total := 0
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		bad := func(why string) error {
			return fmt.Errorf("-sim-pools: pool %q: %s; want name:NODESxGPUS[:GPU_MEMORY_MB[:SPEED]], e.g. h100-80:2x8:81920:2", item, why)
		}
		parts := strings.Split(item, ":")
		if len(parts) < 2 || len(parts) > 4 || parts[0] == "" {
			return nil, bad("wrong number of fields")
		}
		if seen[parts[0]] {
			return nil, bad("name used twice")
		}
		seen[parts[0]] = true
		n, g, ok := strings.Cut(parts[1], "x")
		nodes, err1 := strconv.Atoi(n)
		gpus, err2 := strconv.Atoi(g)
		if !ok || err1 != nil || err2 != nil || nodes < 1 || nodes > 1024 || gpus < 1 || gpus > 64 {
			return nil, bad(fmt.Sprintf("size %q is not NODESxGPUS with 1-1024 nodes of 1-64 GPUs", parts[1]))
		}
		p := simgpu.Pool{Name: parts[0], Nodes: nodes, GPUsPerNode: gpus, GPUModel: parts[0]}
		if len(parts) > 2 {
			mem, err := strconv.Atoi(parts[2])
			if err != nil || mem < 1024 || mem > 1<<20 {
				return nil, bad(fmt.Sprintf("GPU memory %q is not 1024-1048576 MB", parts[2]))
			}
			p.GPUMemoryMB = mem
		}
		if len(parts) > 3 {
			sp, err := strconv.ParseFloat(parts[3], 64)
			if err != nil || math.IsNaN(sp) || sp <= 0 || sp > 100 {
				return nil, bad(fmt.Sprintf("speed %q is not a number in (0, 100]", parts[3]))
			}
			p.Speed = sp
		}
		if total += nodes; total > 1024 {
			return nil, bad("more than 1024 nodes in all")
		}
		pools = append(pools, p)
	}
	return pools, nil
}
