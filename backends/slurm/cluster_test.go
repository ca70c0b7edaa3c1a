package slurm_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/slurm"
)

func TestGresGPUs(t *testing.T) {
	for gres, want := range map[string]int{
		"": 0, "gpu:4": 4, "gpu:a100:2(S:0),gpu:v100:1": 3, "shard:8": 0, "gpu:tesla:8(S:0-1),shard:16": 8, "gpu": 0, "gpu:x": 0,
	} {
		if got := slurm.GresGPUs(gres); got != want {
			t.Errorf("GresGPUs(%q) = %d, want %d", gres, got, want)
		}
	}
}

func TestVerifyRecorded(t *testing.T) {
	_, srv := newFake(t)
	d, _ := newDriver(t, srv.URL, nil)
	c, err := d.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Partitions) != 1 || c.Partitions[0] != "debug" || c.Nodes != 1 || c.TotalGPUs != 0 {
		t.Errorf("Verify = %+v, want partition debug with one node and no GPUs (the recorded cluster)", c)
	}
	d, _ = newDriver(t, srv.URL, func(c *slurm.Config) { c.Partition = "gpu-a100" })
	if _, err := d.Verify(context.Background()); !errors.Is(err, slurm.ErrConfig) || !strings.Contains(err.Error(), `"gpu-a100"`) || !strings.Contains(err.Error(), "debug") {
		t.Errorf("Verify with an unknown partition = %v, want ErrConfig naming it and listing debug", err)
	}
	d, _ = newDriver(t, srv.URL, func(c *slurm.Config) { c.Token = "expired" })
	if _, err := d.Verify(context.Background()); !errors.Is(err, backends.ErrUnauthorized) && !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Verify with a bad token = %v, want ErrUnauthorized or ErrUnavailable", err)
	}
	d, _ = newDriver(t, "http://127.0.0.1:1", func(c *slurm.Config) { c.RetryMax = -1 })
	if _, err := d.Verify(context.Background()); !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Verify against a closed port = %v, want ErrUnavailable", err)
	}
}
