package analytics_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cosmic-horizons/horizons/analytics"
)

// injected is one anomaly of known position and size.
type injected struct{ start, end int }

type synthSeries struct {
	kind string
	xs   []float64
	anom []injected
	cfg  analytics.DetectorConfig
}

// place picks k non-overlapping anomaly starts, at least gap apart, after
// warm points of history.
func place(rng *rand.Rand, n, k, warm, maxLen, gap int) []int {
	var starts []int
	for len(starts) < k {
		s := warm + rng.IntN(n-warm-maxLen)
		ok := true
		for _, o := range starts {
			if s > o-gap-maxLen && s < o+gap+maxLen {
				ok = false
				break
			}
		}
		if ok {
			starts = append(starts, s)
		}
	}
	return starts
}

// synthSet is the seeded synthetic set:
//   - job durations, 4 agents x 2000 jobs, log-normal (sigma 0.15 in log
//     space) around 30 s to 20 min; 10 single-job anomalies each, 3x to 6x
//     the agent's usual duration (7.3 to 12 sd in log space), window 200, threshold 5;
//   - GPU utilisation, 3 backends x 14 days at 5 min (4032 points), daily
//     cycle 0.35..0.85 plus noise sd 0.02; 8 drops each, 3 to 12 points
//     long, 0.2 to 0.5 below the cycle;
//   - queue depth, 3 series x 5000 minutes, Poisson(20); 8 surges each, 5
//     to 20 minutes long, Poisson(60..100);
//   - error rate, 3 series x 4000 windows of 200 jobs at p = 0.02; 8
//     spikes each, 1 to 6 windows long, p = 0.12..0.30; the detector's
//     scale is floored at the binomial noise of such a window,
//     sqrt(0.02*0.98/200) = 0.01, because the MAD of small counts is
//     coarse.
//
// 112 anomalies over 47096 points in all; every anomaly is at least 6
// robust standard deviations from the baseline.
func synthSet(seed uint64) []synthSeries {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var set []synthSeries
	for a := range 4 {
		n := 2000
		mu := math.Log(30 * math.Pow(3.4, float64(a)))
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = math.Exp(mu + 0.15*rng.NormFloat64())
		}
		var an []injected
		for _, s := range place(rng, n, 10, 200, 1, 70) {
			xs[s] *= 3 + 3*rng.Float64()
			an = append(an, injected{s, s})
		}
		set = append(set, synthSeries{"job duration", xs, an, analytics.DetectorConfig{Log: true, Direction: analytics.Up, Threshold: 5, Window: 200}})
	}
	for range 3 {
		n, season := 4032, 288
		phase := rng.Float64() * 2 * math.Pi
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = 0.6 + 0.25*math.Sin(2*math.Pi*float64(i)/float64(season)+phase) + 0.02*rng.NormFloat64()
		}
		var an []injected
		for _, s := range place(rng, n, 8, 3*season+80, 12, 70) {
			l := 3 + rng.IntN(10)
			drop := 0.2 + 0.3*rng.Float64()
			for i := s; i < s+l; i++ {
				xs[i] = math.Max(0, xs[i]-drop)
			}
			an = append(an, injected{s, s + l - 1})
		}
		set = append(set, synthSeries{"gpu utilisation", xs, an, analytics.DetectorConfig{Season: season, Direction: analytics.Down}})
	}
	poisson := func(l float64) float64 {
		// Knuth for small means, normal approximation above 30.
		if l > 30 {
			return math.Max(0, math.Round(l+math.Sqrt(l)*rng.NormFloat64()))
		}
		k, p, L := 0.0, 1.0, math.Exp(-l)
		for {
			p *= rng.Float64()
			if p <= L {
				return k
			}
			k++
		}
	}
	for range 3 {
		n := 5000
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = poisson(20)
		}
		var an []injected
		for _, s := range place(rng, n, 8, 80, 20, 70) {
			l := 5 + rng.IntN(16)
			lam := 60 + 40*rng.Float64()
			for i := s; i < s+l; i++ {
				xs[i] = poisson(lam)
			}
			an = append(an, injected{s, s + l - 1})
		}
		set = append(set, synthSeries{"queue depth", xs, an, analytics.DetectorConfig{Direction: analytics.Up}})
	}
	binom := func(n int, p float64) float64 {
		k := 0
		for range n {
			if rng.Float64() < p {
				k++
			}
		}
		return float64(k) / float64(n)
	}
	for range 3 {
		n := 4000
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = binom(200, 0.02)
		}
		var an []injected
		for _, s := range place(rng, n, 8, 80, 6, 70) {
			l := 1 + rng.IntN(6)
			p := 0.12 + 0.18*rng.Float64()
			for i := s; i < s+l; i++ {
				xs[i] = binom(200, p)
			}
			an = append(an, injected{s, s + l - 1})
		}
		set = append(set, synthSeries{"error rate", xs, an, analytics.DetectorConfig{Direction: analytics.Up, MinScale: 0.01}})
	}
	return set
}

// score counts, per kind and in total: injected anomalies found (any flag
// inside them), and alarms (runs of consecutive flagged points) that are
// true (touch an injected anomaly) or false.
type tally struct{ injected, found, alarms, trueAlarms int }

func scoreSeries(s synthSeries, flags []analytics.Anomaly) tally {
	flagged := map[int]bool{}
	for _, f := range flags {
		flagged[f.Index] = true
	}
	inAnom := func(i int) bool {
		for _, a := range s.anom {
			if i >= a.start && i <= a.end {
				return true
			}
		}
		return false
	}
	t := tally{injected: len(s.anom)}
	for _, a := range s.anom {
		for i := a.start; i <= a.end; i++ {
			if flagged[i] {
				t.found++
				break
			}
		}
	}
	for i := 0; i < len(s.xs); i++ {
		if !flagged[i] {
			continue
		}
		hit := false
		for ; i < len(s.xs) && flagged[i]; i++ {
			hit = hit || inAnom(i)
		}
		t.alarms++
		if hit {
			t.trueAlarms++
		}
	}
	return t
}

// TestAnomalyDetectionAccuracy scores Detect on the seeded synthetic set
// (see synthSet) for three seeds: recall and precision must each reach
// 95 % overall and per kind.
func TestAnomalyDetectionAccuracy(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		total := tally{}
		kinds := map[string]*tally{}
		points := 0
		for _, s := range synthSet(seed) {
			flags, err := analytics.Detect(s.xs, s.cfg)
			if err != nil {
				t.Fatal(err)
			}
			r := scoreSeries(s, flags)
			points += len(s.xs)
			k := kinds[s.kind]
			if k == nil {
				k = &tally{}
				kinds[s.kind] = k
			}
			for _, tl := range []*tally{k, &total} {
				tl.injected += r.injected
				tl.found += r.found
				tl.alarms += r.alarms
				tl.trueAlarms += r.trueAlarms
			}
		}
		check := func(name string, tl tally) {
			recall := float64(tl.found) / float64(tl.injected)
			precision := 1.0
			if tl.alarms > 0 {
				precision = float64(tl.trueAlarms) / float64(tl.alarms)
			}
			t.Logf("seed %d %-16s injected %3d found %3d alarms %3d false %2d: recall %.3f precision %.3f", seed, name, tl.injected, tl.found, tl.alarms, tl.alarms-tl.trueAlarms, recall, precision)
			if recall < 0.95 || precision < 0.95 {
				t.Errorf("seed %d %s: recall %.3f, precision %.3f; want both >= 0.95", seed, name, recall, precision)
			}
		}
		for _, k := range []string{"job duration", "gpu utilisation", "queue depth", "error rate"} {
			check(k, *kinds[k])
		}
		check("all", total)
		if points != 47096 || total.injected != 112 {
			t.Fatalf("set holds %d points and %d anomalies, want 47096 and 112", points, total.injected)
		}
	}
}

func TestDetectFindsAndRejects(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = 10 + float64(i%3)
	}
	xs[70] = 40
	xs[80] = math.NaN()
	got, err := analytics.Detect(xs, analytics.DetectorConfig{Window: 20})
	if err != nil || len(got) != 1 || got[0].Index != 70 || got[0].Expected != 11 || got[0].Score <= 0 {
		t.Fatalf("Detect = %+v, %v; want one anomaly at 70 expected 11", got, err)
	}
	if got, _ := analytics.Detect(xs, analytics.DetectorConfig{Window: 20, Direction: analytics.Down}); len(got) != 0 {
		t.Fatalf("Down flagged a rise: %+v", got)
	}
	if _, err := analytics.Detect(xs, analytics.DetectorConfig{Window: 2}); err == nil {
		t.Fatal("Window 2 accepted")
	}
}
