package anomaly

import (
	"fmt"
	"math"
	"slices"
)

// Coord is a sky position in degrees.
type Coord struct {
	RA  float64 `json:"ra_deg"`
	Dec float64 `json:"dec_deg"`
}

// Pair is one match between a[A] and b[B], SepArcsec apart.
type Pair struct {
	A, B      int
	SepArcsec float64
}

// SeparationArcsec returns the great-circle distance between two positions
// (haversine, accurate at small separations).
func SeparationArcsec(a, b Coord) float64 {
	const d2r = math.Pi / 180
	s1 := math.Sin((b.Dec - a.Dec) * d2r / 2)
	s2 := math.Sin((b.RA - a.RA) * d2r / 2)
	h := s1*s1 + math.Cos(a.Dec*d2r)*math.Cos(b.Dec*d2r)*s2*s2
	return 2 * math.Asin(math.Min(1, math.Sqrt(h))) / d2r * 3600
}

// Match pairs positions of a with positions of b one-to-one within
// radiusArcsec, closest pairs first. Pairs are returned sorted by A.
func Match(a, b []Coord, radiusArcsec float64) ([]Pair, error) {
	if !(radiusArcsec > 0) || math.IsInf(radiusArcsec, 0) {
		return nil, fmt.Errorf("%w: match radius = %v arcsec: must be positive and finite", ErrBadConfig, radiusArcsec)
	}
	// Sort b by Dec so each a only scans a window.
	idx := make([]int, len(b))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(i, j int) int {
		switch {
		case b[i].Dec < b[j].Dec:
			return -1
		case b[i].Dec > b[j].Dec:
			return 1
		}
		return i - j
	})
	rdeg := radiusArcsec / 3600
	var cand []Pair
	for i, p := range a {
		lo, _ := slices.BinarySearchFunc(idx, p.Dec-rdeg, func(k int, t float64) int {
			if b[k].Dec < t {
				return -1
			}
			return 1
		})
		for _, k := range idx[lo:] {
			if b[k].Dec > p.Dec+rdeg {
				break
			}
			if s := SeparationArcsec(p, b[k]); s <= radiusArcsec {
				cand = append(cand, Pair{A: i, B: k, SepArcsec: s})
			}
		}
	}
	slices.SortFunc(cand, func(x, y Pair) int {
		switch {
		case x.SepArcsec < y.SepArcsec:
			return -1
		case x.SepArcsec > y.SepArcsec:
			return 1
		case x.A != y.A:
			return x.A - y.A
		}
		return x.B - y.B
	})
	usedA := make([]bool, len(a))
	usedB := make([]bool, len(b))
	var out []Pair
	for _, c := range cand {
		if usedA[c.A] || usedB[c.B] {
			continue
		}
		usedA[c.A], usedB[c.B] = true, true
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y Pair) int { return x.A - y.A })
	return out, nil
}

// Reference is a truth entry for scoring a catalogue.
type Reference struct {
	Coord
	// Flux is the true integrated flux density (Jy).
	Flux float64
	// SNR is the true peak signal-to-noise ratio.
	SNR float64
}

// Evaluation scores detections against a truth list.
type Evaluation struct {
	Truth      []Reference
	Detections []Component
	// Pairs match Truth (A) with Detections (B).
	Pairs []Pair
	byA   map[int]int
}

// Evaluate matches detections to truth within radiusArcsec.
func Evaluate(truth []Reference, det []Component, radiusArcsec float64) (*Evaluation, error) {
	a := make([]Coord, len(truth))
	for i, t := range truth {
		a[i] = t.Coord
	}
	b := make([]Coord, len(det))
	for i, d := range det {
		b[i] = Coord{d.RA, d.Dec}
	}
	pairs, err := Match(a, b, radiusArcsec)
	if err != nil {
		return nil, err
	}
	e := &Evaluation{Truth: truth, Detections: det, Pairs: pairs, byA: map[int]int{}}
	for _, p := range pairs {
		e.byA[p.A] = p.B
	}
	return e, nil
}

// Completeness returns the fraction of truth entries with SNR >= minSNR
// that were detected, and how many such entries there are (NaN if none).
func (e *Evaluation) Completeness(minSNR float64) (float64, int) {
	n, hit := 0, 0
	for i, t := range e.Truth {
		if t.SNR < minSNR {
			continue
		}
		n++
		if _, ok := e.byA[i]; ok {
			hit++
		}
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return float64(hit) / float64(n), n
}

// Reliability returns the fraction of detections that match a truth entry
// (NaN if there are no detections).
func (e *Evaluation) Reliability() float64 {
	if len(e.Detections) == 0 {
		return math.NaN()
	}
	return float64(len(e.Pairs)) / float64(len(e.Detections))
}

// FluxRatios returns measured/true integrated flux for matched truth
// entries with SNR >= minSNR. A truth entry split into several detections
// is scored by its matched detection only.
func (e *Evaluation) FluxRatios(minSNR float64) []float64 {
	var out []float64
	for _, p := range e.Pairs {
		t := e.Truth[p.A]
		if t.SNR >= minSNR && t.Flux != 0 {
			out = append(out, e.Detections[p.B].Flux/t.Flux)
		}
	}
	return out
}

// MedianFluxRatio returns the median of FluxRatios(minSNR) and the count
// (NaN if none).
func (e *Evaluation) MedianFluxRatio(minSNR float64) (float64, int) {
	r := e.FluxRatios(minSNR)
	if len(r) == 0 {
		return math.NaN(), 0
	}
	return median(r), len(r)
}
