package analytics

import (
	"fmt"
	"math"
	"slices"
)

// Direction says which deviations a Detector flags.
type Direction int

// The directions.
const (
	// Both flags values far above or below the baseline.
	Both Direction = iota
	// Up flags values far above (durations, queue surges, error spikes).
	Up
	// Down flags values far below (utilisation drops).
	Down
)

// Defaults of DetectorConfig.
const (
	DefaultDetectWindow    = 60
	DefaultDetectThreshold = 6.0
	DefaultSeasonCycles    = 3
)

// DetectorConfig configures Detect; zero fields mean the defaults.
type DetectorConfig struct {
	// Window is how many trailing points form the baseline; zero means
	// DefaultDetectWindow. Points before Window/2 of history are never
	// flagged.
	Window int
	// Season is the period in points of a seasonal series (288 for a
	// daily cycle at 5 min); zero means none. With a season the expected
	// value is the median of the same phase over the last SeasonCycles
	// periods, and the residuals are scored instead of the values.
	Season int
	// SeasonCycles is how many past periods give the seasonal expectation;
	// zero means DefaultSeasonCycles.
	SeasonCycles int
	// Threshold is the robust z-score (|x - median| / (1.4826 MAD)) at or
	// above which a point is flagged; zero means DefaultDetectThreshold.
	Threshold float64
	// Direction restricts the flagged deviations.
	Direction Direction
	// Log scores log(x) instead of x (for durations, whose noise is
	// multiplicative); values <= 0 are then skipped.
	Log bool
	// MinScale floors the robust scale so a flat series does not flag
	// rounding noise; zero means 1e-9.
	MinScale float64
}

// Anomaly is one flagged point of a series.
type Anomaly struct {
	// Index is the point's index in the input.
	Index int `json:"index"`
	// Value is the point's value; Expected the baseline it was compared
	// with (both in the input's units).
	Value    float64 `json:"value"`
	Expected float64 `json:"expected"`
	// Score is the robust z-score: positive above, negative below.
	Score float64 `json:"score"`
}

// Detect flags the points of xs that deviate from a robust baseline: the
// rolling median and MAD (median absolute deviation) of the previous Window
// points, after removing a seasonal expectation when Season is set. A
// flagged point leaves the history (and is replaced by its expectation in
// the seasonal one), so an anomaly does not become the baseline. NaN marks a missing point.
func Detect(xs []float64, cfg DetectorConfig) ([]Anomaly, error) {
	if cfg.Window == 0 {
		cfg.Window = DefaultDetectWindow
	}
	if cfg.Threshold == 0 {
		cfg.Threshold = DefaultDetectThreshold
	}
	if cfg.SeasonCycles == 0 {
		cfg.SeasonCycles = DefaultSeasonCycles
	}
	if cfg.MinScale == 0 {
		cfg.MinScale = 1e-9
	}
	switch {
	case cfg.Window < 4:
		return nil, fmt.Errorf("analytics: DetectorConfig.Window is %d, want at least 4", cfg.Window)
	case cfg.Season < 0:
		return nil, fmt.Errorf("analytics: DetectorConfig.Season is %d, want >= 0", cfg.Season)
	case cfg.Threshold < 0 || math.IsNaN(cfg.Threshold):
		return nil, fmt.Errorf("analytics: DetectorConfig.Threshold is %v, want > 0", cfg.Threshold)
	case cfg.SeasonCycles < 0:
		return nil, fmt.Errorf("analytics: DetectorConfig.SeasonCycles is %d, want > 0", cfg.SeasonCycles)
	}
	n := len(xs)
	clean := make([]float64, n) // transformed values, anomalies replaced
	for i, x := range xs {
		if cfg.Log {
			if x > 0 {
				x = math.Log(x)
			} else {
				x = math.NaN()
			}
		}
		clean[i] = x
	}
	expected := func(i int) (float64, bool) {
		if cfg.Season == 0 {
			return 0, true
		}
		var ph []float64
		for k := 1; k <= cfg.SeasonCycles; k++ {
			if j := i - k*cfg.Season; j >= 0 && !math.IsNaN(clean[j]) {
				ph = append(ph, clean[j])
			}
		}
		if len(ph) == 0 {
			return 0, false
		}
		return median(ph), true
	}
	resid := make([]float64, n) // residuals after the seasonal expectation
	for i := range resid {
		resid[i] = math.NaN()
	}
	var out []Anomaly
	win := make([]float64, 0, cfg.Window)
	dev := make([]float64, 0, cfg.Window)
	for i := range n {
		x := clean[i]
		if math.IsNaN(x) {
			continue
		}
		e, ok := expected(i)
		if !ok {
			continue
		}
		r := x - e
		win = win[:0]
		for j := i - 1; j >= 0 && len(win) < cfg.Window; j-- {
			if !math.IsNaN(resid[j]) {
				win = append(win, resid[j])
			}
		}
		resid[i] = r
		if len(win) < cfg.Window/2 {
			continue
		}
		med := median(win)
		dev = dev[:0]
		for _, w := range win {
			dev = append(dev, math.Abs(w-med))
		}
		scale := math.Max(1.4826*median(dev), cfg.MinScale)
		z := (r - med) / scale
		if math.Abs(z) < cfg.Threshold || cfg.Direction == Up && z < 0 || cfg.Direction == Down && z > 0 {
			continue
		}
		base := e + med
		// Out of the residual history (so it neither moves the median nor
		// shrinks the scale) and replaced by its expectation in the
		// seasonal history.
		resid[i] = math.NaN()
		clean[i] = base
		if cfg.Log {
			base = math.Exp(base)
		}
		out = append(out, Anomaly{Index: i, Value: xs[i], Expected: base, Score: z})
	}
	return out, nil
}

// DetectSeries runs Detect over a query result's series (nil values are
// missing points).
func DetectSeries(s Series, cfg DetectorConfig) ([]Anomaly, error) {
	xs := make([]float64, len(s.Values))
	for i, v := range s.Values {
		xs[i] = math.NaN()
		if v != nil {
			xs[i] = *v
		}
	}
	return Detect(xs, cfg)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}
