package imaging

import (
	"fmt"
	"math"
)

// Features are the measured properties [Choose] decides on.
type Features struct {
	// FractionalBandwidth is (fmax - fmin) / fcentre of the data.
	FractionalBandwidth float64 `json:"fractional_bandwidth"`
	// MaxSidelobe is the largest |PSF| outside the main lobe.
	MaxSidelobe float64 `json:"max_psf_sidelobe"`
	// LargestIslandBeams is the largest area, in restoring-beam areas, of
	// a dirty-image island above half its own peak (a point source gives
	// about 1), over islands above 5 sigma that are brighter than 1.5 times
	// the sidelobe level of the brightest island.
	LargestIslandBeams float64 `json:"largest_island_beams"`
	// ImageSize is the image side in pixels.
	ImageSize int `json:"image_size"`
}

// Choice is the outcome of [Choose].
type Choice struct {
	// Deconvolver is the algorithm this package will run (hogbom,
	// cotton-schwab, clark, multiscale or mtmfs).
	Deconvolver string `json:"deconvolver"`
	// Recommended is the algorithm the rules recommend; it differs from
	// Deconvolver when the recommended one is not run for this image size
	// (multiscale above MaxMultiscaleSize, mtmfs above MaxMTMFSSize); the
	// Reason then names the fallback.
	Recommended string `json:"recommended"`
	// MGain is the major-cycle gain to use with cotton-schwab.
	MGain float64 `json:"mgain,omitempty"`
	// Reason explains the decision in one sentence.
	Reason string `json:"reason"`
	// Notes are the other rules that fired.
	Notes []string `json:"notes,omitempty"`
}

// Thresholds of the selection rules.
const (
	// ExtendedIslandBeams: an island wider than this many beams at half
	// its peak is extended emission.
	ExtendedIslandBeams = 3.0
	// HighSidelobe: a PSF sidelobe above this calls for major cycles.
	HighSidelobe = 0.2
	// WideBandFraction: above this fractional bandwidth the sky's spectral
	// structure matters (VLASS 2–4 GHz is 0.67).
	WideBandFraction = 0.1
	// LargeImage: above this side Clark minor cycles (a pixel list and a
	// PSF patch) pay.
	LargeImage = 2048
	// MaxMultiscaleSize is the largest image side multiscale CLEAN runs
	// at (its smoothed PSFs take 6 × (2n)² values).
	MaxMultiscaleSize = 1024
	// MaxMTMFSSize is the largest image side auto selection runs mtmfs
	// at (its minor cycle does four PSF subtractions per iteration).
	MaxMTMFSSize = 1024
)

// Choose selects a deconvolver by explicit rules, first match wins:
//
//  1. extended emission (an island > 3 beams) → multiscale CLEAN (scales
//     0, 2 and 4 beams, inside Cotton–Schwab major cycles); above
//     MaxMultiscaleSize pixels it falls back to cotton-schwab and says so;
//  2. PSF sidelobes > 0.2 → cotton-schwab with mgain 0.8 (WSClean);
//  3. image side > 2048 → clark (minor cycles on a pixel list with a PSF
//     patch, residuals recomputed from the visibilities each major cycle);
//  4. fractional bandwidth > 10 % → mtmfs with nterms 2 (spectral index
//     per component, inside Cotton–Schwab major cycles); above
//     MaxMTMFSSize pixels it falls back to cotton-schwab and says so;
//  5. otherwise → hogbom: compact sources, a clean PSF, narrow band.
func Choose(f Features) Choice {
	var notes []string
	if f.FractionalBandwidth > WideBandFraction {
		notes = append(notes, fmt.Sprintf("fractional bandwidth %.2f > %.2f: mtmfs with nterms 2 models spectral index (run up to %d pixels)", f.FractionalBandwidth, WideBandFraction, MaxMTMFSSize))
	}
	if f.MaxSidelobe > HighSidelobe {
		notes = append(notes, fmt.Sprintf("PSF sidelobe %.2f > %.2f", f.MaxSidelobe, HighSidelobe))
	}
	switch {
	case f.LargestIslandBeams > ExtendedIslandBeams && f.ImageSize <= MaxMultiscaleSize:
		return Choice{Deconvolver: DeconvMultiscale, Recommended: DeconvMultiscale, MGain: 0.8, Notes: notes,
			Reason: fmt.Sprintf("extended emission: an island covers %.1f beams (> %.0f), Högbom would break it into mottled points; multiscale CLEAN (scales 0, 2 and 4 beams) inside Cotton–Schwab major cycles models it", f.LargestIslandBeams, ExtendedIslandBeams)}
	case f.LargestIslandBeams > ExtendedIslandBeams:
		return Choice{Deconvolver: DeconvCottonSchwab, Recommended: DeconvMultiscale, MGain: 0.8, Notes: notes,
			Reason: fmt.Sprintf("extended emission: an island covers %.1f beams (> %.0f); multiscale CLEAN is recommended but this package runs it only up to %d pixels (image side %d), so it falls back to Cotton–Schwab, the nearest implemented algorithm", f.LargestIslandBeams, ExtendedIslandBeams, MaxMultiscaleSize, f.ImageSize)}
	case f.MaxSidelobe > HighSidelobe:
		return Choice{Deconvolver: DeconvCottonSchwab, Recommended: DeconvCottonSchwab, MGain: 0.8, Notes: notes,
			Reason: fmt.Sprintf("PSF sidelobes reach %.2f (> %.1f): minor cycles with this PSF drift, so Cotton–Schwab major cycles with mgain 0.8 re-subtract the model from the visibilities", f.MaxSidelobe, HighSidelobe)}
	case f.ImageSize > LargeImage:
		return Choice{Deconvolver: DeconvClark, Recommended: DeconvClark, MGain: 0.8, Notes: notes,
			Reason: fmt.Sprintf("image side %d > %d: full-image Högbom iterations are too slow, Clark minor cycles on the bright-pixel list with a PSF patch, and major cycles from the visibilities, are used", f.ImageSize, LargeImage)}
	case f.FractionalBandwidth > WideBandFraction && f.ImageSize <= MaxMTMFSSize:
		return Choice{Deconvolver: DeconvMTMFS, Recommended: DeconvMTMFS, MGain: 0.8, Notes: notes,
			Reason: fmt.Sprintf("compact emission and PSF sidelobes %.2f, but fractional bandwidth %.2f (> %.1f): mtmfs with nterms 2 models each component's spectral index, inside Cotton–Schwab major cycles", f.MaxSidelobe, f.FractionalBandwidth, WideBandFraction)}
	case f.FractionalBandwidth > WideBandFraction:
		return Choice{Deconvolver: DeconvCottonSchwab, Recommended: DeconvMTMFS, MGain: 0.8, Notes: notes,
			Reason: fmt.Sprintf("compact emission and PSF sidelobes %.2f, but fractional bandwidth %.2f (> %.1f): mtmfs (nterms 2) is recommended but this package runs it only up to %d pixels (image side %d), so it falls back to Cotton–Schwab, the nearest implemented algorithm, whose major cycles subtract the model per channel", f.MaxSidelobe, f.FractionalBandwidth, WideBandFraction, MaxMTMFSSize, f.ImageSize)}
	}
	return Choice{Deconvolver: DeconvHogbom, Recommended: DeconvHogbom, Notes: notes,
		Reason: fmt.Sprintf("compact emission (largest island %.1f beams), PSF sidelobes %.2f and fractional bandwidth %.2f: Högbom CLEAN suits isolated point sources", f.LargestIslandBeams, f.MaxSidelobe, f.FractionalBandwidth)}
}

// MeasureFeatures measures the [Features] of a dirty image and its PSF
// (both normalised by [Reconstruct]) for data of the given fractional
// bandwidth.
func MeasureFeatures(dirty, psf *Image, beam Beam, fracBW float64) (Features, error) {
	if dirty == nil || psf == nil || len(dirty.Pix) != dirty.N*dirty.N || len(psf.Pix) != psf.N*psf.N {
		return Features{}, fmt.Errorf("%w: MeasureFeatures needs square dirty and PSF images", ErrInput)
	}
	if !(beam.MajorArcsec > 0 && beam.MinorArcsec > 0) {
		return Features{}, fmt.Errorf("%w: beam %+v must have positive axes", ErrInput, beam)
	}
	if !(fracBW >= 0) || math.IsInf(fracBW, 0) {
		return Features{}, fmt.Errorf("%w: fractional bandwidth %v must be >= 0", ErrInput, fracBW)
	}
	f := Features{FractionalBandwidth: fracBW, MaxSidelobe: maxSidelobe(psf, beam), ImageSize: dirty.N}
	n := dirty.N
	sigma := RobustRMS(dirty.Pix)
	beamPix := math.Pi / 4 * beam.MajorArcsec * beam.MinorArcsec / (dirty.CellArcsec * dirty.CellArcsec)
	label := make([]int32, n*n)
	type island struct{ peak, area float64 }
	var islands []island
	var stack []int
	var members []int
	for i, v := range dirty.Pix {
		if label[i] != 0 || !(v > 5*sigma) {
			continue
		}
		id := int32(len(islands) + 1)
		label[i] = id
		stack = append(stack[:0], i)
		members = members[:0]
		peak := v
		for len(stack) > 0 {
			j := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			members = append(members, j)
			peak = math.Max(peak, dirty.Pix[j])
			x, y := j%n, j/n
			for _, d := range [4][2]int{{1, 0}, {-1, 0}, {0, 1}, {0, -1}} {
				nx, ny := x+d[0], y+d[1]
				if nx < 0 || ny < 0 || nx >= n || ny >= n {
					continue
				}
				k := ny*n + nx
				if label[k] == 0 && dirty.Pix[k] > 5*sigma {
					label[k] = id
					stack = append(stack, k)
				}
			}
		}
		half := 0
		for _, j := range members {
			if dirty.Pix[j] >= peak/2 {
				half++
			}
		}
		islands = append(islands, island{peak, float64(half) / beamPix})
	}
	brightest := 0.0
	for _, is := range islands {
		brightest = math.Max(brightest, is.peak)
	}
	for _, is := range islands {
		if is.peak >= 1.5*f.MaxSidelobe*brightest || is.peak == brightest {
			f.LargestIslandBeams = math.Max(f.LargestIslandBeams, is.area)
		}
	}
	return f, nil
}
