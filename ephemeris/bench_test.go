package ephemeris

import (
	"testing"
	"time"
)

// Benchmarks report positions per second on one core:
//
//	go test ./ephemeris -run '^$' -bench . -benchtime 2s
func benchBody(b *testing.B, body Body) {
	t0, err := FromUTC(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := Position(body, t0.Add(float64(i%1000)*3600)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "positions/s")
}

func BenchmarkPositionSun(b *testing.B)     { benchBody(b, Sun) }
func BenchmarkPositionMoon(b *testing.B)    { benchBody(b, Moon) }
func BenchmarkPositionMars(b *testing.B)    { benchBody(b, Mars) }
func BenchmarkPositionMercury(b *testing.B) { benchBody(b, Mercury) }

func BenchmarkTopocentricMoonVLA(b *testing.B) {
	t0, _ := FromUTC(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), nil)
	for i := 0; b.Loop(); i++ {
		if _, err := Topocentric(Moon, t0.Add(float64(i%1000)*60), VLA, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "positions/s")
}

func BenchmarkRiseTransitSetMoon(b *testing.B) {
	d := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; b.Loop(); i++ {
		if _, err := RiseTransitSet(Moon, d.AddDate(0, 0, i%365), VLA, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkObservabilityYear is the longest query the REST API allows: one
// year of windows with Sun and Moon avoidance.
func BenchmarkObservabilityYear(b *testing.B) {
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	min := 20.0
	for b.Loop() {
		if _, err := Observability(202.78, 30.51, from, from.AddDate(1, 0, 0), VLA, &ObservabilityConfig{MinAltDeg: &min, SunAvoidDeg: 30, MoonAvoidDeg: 10}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPhasesYear(b *testing.B) {
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		if _, err := Phases(from, from.AddDate(1, 0, 0)); err != nil {
			b.Fatal(err)
		}
	}
}
