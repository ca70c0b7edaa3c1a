package slurm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// ErrConfig reports a configuration the cluster contradicts (a partition
// it does not have). [Driver.Verify] returns it.
var ErrConfig = errors.New("slurm: configuration does not match the cluster")

// Node is the part of a node record this client reads (both API
// generations name these fields alike).
type Node struct {
	Name string `json:"name"`
	// Gres is the node's generic resources, e.g. "gpu:4" or
	// "gpu:a100:4(S:0-1),shard:8".
	Gres       string   `json:"gres"`
	Partitions []string `json:"partitions"`
}

// GPUs returns the GPU count in the node's Gres.
func (n Node) GPUs() int { return GresGPUs(n.Gres) }

// GresGPUs sums the gpu entries of a Slurm GRES string: "gpu:4" is 4,
// "gpu:a100:2(S:0),gpu:v100:1" is 3, "shard:8" is 0.
func GresGPUs(gres string) int {
	total := 0
	for _, item := range strings.Split(gres, ",") {
		item = strings.TrimSpace(item)
		if i := strings.IndexByte(item, '('); i >= 0 {
			item = item[:i]
		}
		parts := strings.Split(item, ":")
		if len(parts) < 2 || parts[0] != "gpu" {
			continue
		}
		if n, err := strconv.Atoi(parts[len(parts)-1]); err == nil && n > 0 {
			total += n
		}
	}
	return total
}

// Nodes lists the cluster's nodes (GET /nodes).
func (d *Driver) Nodes(ctx context.Context) ([]Node, error) {
	var out struct {
		Nodes []Node `json:"nodes"`
	}
	if _, err := d.version(ctx); err != nil {
		return nil, err
	}
	if err := d.call(ctx, http.MethodGet, d.listPath("/nodes"), nil, &out); err != nil {
		return nil, err
	}
	return out.Nodes, nil
}

// Partitions lists the names of the cluster's partitions (GET
// /partitions), sorted.
func (d *Driver) Partitions(ctx context.Context) ([]string, error) {
	var out struct {
		Partitions []struct {
			Name string `json:"name"`
		} `json:"partitions"`
	}
	if _, err := d.version(ctx); err != nil {
		return nil, err
	}
	if err := d.call(ctx, http.MethodGet, d.listPath("/partitions"), nil, &out); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(out.Partitions))
	for _, p := range out.Partitions {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	return names, nil
}

// Cluster is what [Driver.Verify] found.
type Cluster struct {
	// Partitions are the partition names.
	Partitions []string
	// MaxGPUsPerNode and TotalGPUs count the GPUs of the nodes in the
	// configured partition (every node when none is configured).
	MaxGPUsPerNode, TotalGPUs int
	// Nodes is the number of nodes counted.
	Nodes int
}

// Verify checks at start-up what a wrong configuration would otherwise
// break at the first job: that slurmrestd answers and a slurmctld is up
// (backends.ErrUnavailable), that the credentials are accepted
// (backends.ErrUnauthorized), and that the configured partition exists
// (ErrConfig, listing the partitions there are). It returns the GPUs it
// found, for the limits.
func (d *Driver) Verify(ctx context.Context) (Cluster, error) {
	if err := d.Ping(ctx); err != nil {
		return Cluster{}, err
	}
	parts, err := d.Partitions(ctx)
	if err != nil {
		return Cluster{}, err
	}
	c := Cluster{Partitions: parts}
	if p := d.cfg.Partition; p != "" {
		found := false
		for _, n := range parts {
			found = found || n == p
		}
		if !found {
			return c, fmt.Errorf("%w: partition %q does not exist on %s; it has %s", ErrConfig, p, d.cfg.URL, strings.Join(parts, ", "))
		}
	}
	nodes, err := d.Nodes(ctx)
	if err != nil {
		return c, err
	}
	for _, n := range nodes {
		in := d.cfg.Partition == ""
		for _, p := range n.Partitions {
			in = in || p == d.cfg.Partition
		}
		if !in {
			continue
		}
		g := n.GPUs()
		c.Nodes++
		c.TotalGPUs += g
		c.MaxGPUsPerNode = max(c.MaxGPUsPerNode, g)
	}
	return c, nil
}
