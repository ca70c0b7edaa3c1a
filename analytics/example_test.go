package analytics_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cosmic-horizons/horizons/analytics"
)

func Example() {
	ctx := context.Background()
	s, _ := analytics.New(analytics.NewMemory(), nil)
	defer s.Close()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, v := range []float64{30, 40, 50, 300} {
		agent := "imaging"
		if i == 3 {
			agent = "alphacal"
		}
		s.Write(ctx, analytics.Point{Metric: analytics.MetricRunTime, Labels: analytics.Labels{Agent: agent}, Time: t0.Add(time.Duration(i) * 20 * time.Minute), Value: v})
	}
	r, err := s.Query(ctx, analytics.Query{Metric: analytics.MetricRunTime, From: t0, To: t0.Add(2 * time.Hour), Step: time.Hour, Agg: analytics.AggAvg, GroupBy: []string{analytics.ByAgent}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, sr := range r.Series {
		fmt.Print(sr.Labels.Agent, ":")
		for _, v := range sr.Values {
			if v == nil {
				fmt.Print(" -")
			} else {
				fmt.Print(" ", *v)
			}
		}
		fmt.Println()
	}
	_, err = s.Query(ctx, analytics.Query{Metric: "cpu_magic", From: t0, To: t0.Add(time.Hour)})
	fmt.Println(errors.Is(err, analytics.ErrUnknownMetric))
	// Output:
	// alphacal: - 300
	// imaging: 40 -
	// true
}
