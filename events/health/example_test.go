package health_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/cosmic-horizons/horizons/events/health"
)

// A Monitor probes the transport and turns the router's outcomes into a
// report: the same report a system.health event carries and /readyz uses.
func Example() {
	reachable := true
	m := health.New(&health.Config{
		Component: "reference-server",
		Transport: "kafka",
		Probe: func(context.Context) error {
			if !reachable {
				return errors.New("dial tcp 10.0.0.7:9092: connection refused")
			}
			return nil
		},
	})
	r := m.Check(context.Background())
	fmt.Println(r.Status, r.Connected)
	reachable = false
	r = m.Check(context.Background())
	fmt.Println(r.Status, r.Connected)
	// Output:
	// healthy true
	// unhealthy false
}
