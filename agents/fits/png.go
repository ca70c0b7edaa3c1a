package fits

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"sort"
)

// PNGConfig controls [WritePNG]. Zero fields take the defaults.
type PNGConfig struct {
	// LowPercentile and HighPercentile set the black and white levels;
	// zero means 0.5 and 99.9.
	LowPercentile, HighPercentile float64
	// Asinh stretches with asinh(x/soft)/asinh(1/soft), soft = 0.1, which
	// shows faint sources next to bright ones; false is linear.
	Asinh bool
}

// WritePNG writes an 8-bit grey preview of pix (row 0 at the bottom, as in
// FITS; the PNG is flipped so north is up). NaN pixels are black.
func WritePNG(w io.Writer, pix []float32, width, height int, cfg *PNGConfig) error {
	if width < 1 || height < 1 || len(pix) != width*height {
		return fmt.Errorf("%w: PNG of %d×%d from %d pixels", ErrImage, width, height, len(pix))
	}
	var c PNGConfig
	if cfg != nil {
		c = *cfg
	}
	if c.LowPercentile == 0 {
		c.LowPercentile = 0.5
	}
	if c.HighPercentile == 0 {
		c.HighPercentile = 99.9
	}
	if !(c.LowPercentile >= 0 && c.LowPercentile < c.HighPercentile && c.HighPercentile <= 100) {
		return fmt.Errorf("%w: percentiles %v..%v: want 0 <= low < high <= 100", ErrImage, c.LowPercentile, c.HighPercentile)
	}
	vals := make([]float64, 0, len(pix))
	for _, v := range pix {
		if !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) {
			vals = append(vals, float64(v))
		}
	}
	lo, hi := 0.0, 1.0
	if len(vals) > 0 {
		sort.Float64s(vals)
		at := func(p float64) float64 { return vals[int(math.Round(p/100*float64(len(vals)-1)))] }
		lo, hi = at(c.LowPercentile), at(c.HighPercentile)
	}
	if hi <= lo {
		hi = lo + 1
	}
	img := image.NewGray(image.Rect(0, 0, width, height))
	for y := 0; y < height; y++ {
		for x := 0; x < width; x++ {
			v := float64(pix[y*width+x])
			t := 0.0
			if !math.IsNaN(v) {
				t = math.Min(math.Max((v-lo)/(hi-lo), 0), 1)
				if c.Asinh {
					t = math.Asinh(t/0.1) / math.Asinh(1/0.1)
				}
			}
			img.SetGray(x, height-1-y, color.Gray{Y: uint8(math.Round(255 * t))})
		}
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("fits: png: %w", err)
	}
	return nil
}
