package cacheevents_test

import (
	"context"
	"fmt"
	"time"

	"github.com/cosmic-horizons/horizons/cache"
	"github.com/cosmic-horizons/horizons/cache/cacheevents"
	"github.com/cosmic-horizons/horizons/events"
)

// Entries tagged with a job's id are dropped when the job changes state.
// In a server, register inv.Handler() on a router for events.TopicJobs.
func Example() {
	ctx := context.Background()
	c, _ := cache.NewMemoryCache(nil, nil)
	defer c.Close()
	_ = c.Set(ctx, "job/42", map[string]string{"state": "RUNNING"}, time.Hour, cache.JobTag("42"))

	inv, _ := cacheevents.New(c, nil)
	e, _ := events.New(events.JobCompleted, "42", events.JobData{JobID: "42", Agent: "imaging", State: "COMPLETED"})
	_ = inv.Handle(ctx, e)

	var v map[string]string
	fmt.Println(c.Get(ctx, "job/42", &v))
	// Output: cache: not found: key "job/42"
}
