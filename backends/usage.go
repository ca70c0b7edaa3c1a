package backends

import (
	"context"
	"fmt"
)

// GPUUsage is the state of one GPU at one moment.
type GPUUsage struct {
	Node          string  `json:"node"`
	Index         int     `json:"index"`
	Utilization   float64 `json:"utilization"` // 0–1
	MemoryUsedMB  int     `json:"memory_used_mb"`
	MemoryTotalMB int     `json:"memory_total_mb"`
	TaskID        string  `json:"task_id,omitempty"`
}

// UsageReporter is an optional Driver interface for backends that can report
// per-GPU utilisation (the simulated cluster; Slurm through its node data).
type UsageReporter interface {
	Usage(ctx context.Context) ([]GPUUsage, error)
}

// Usage returns per-GPU utilisation if the driver reports it, or an error
// wrapping ErrUnsupported.
func (b *Backend) Usage(ctx context.Context) ([]GPUUsage, error) {
	u, ok := b.d.(UsageReporter)
	if !ok {
		return nil, fmt.Errorf("%w: backend %s does not report GPU usage", ErrUnsupported, b.Name())
	}
	return u.Usage(ctx)
}
