package anomaly

import "math"

// Island is a connected group of pixels above the flood threshold that
// contains at least one pixel above the seed threshold (8-connected).
type Island struct {
	// ID numbers islands from 1 in scan order.
	ID int `json:"id"`
	// Pixels are indices y*Width+x into the image.
	Pixels []int `json:"-"`
	// PeakX, PeakY and PeakSNR locate the brightest pixel.
	PeakX   int     `json:"peak_x"`
	PeakY   int     `json:"peak_y"`
	PeakSNR float64 `json:"peak_snr"`
	// MinX, MinY, MaxX, MaxY bound the island (inclusive).
	MinX int `json:"min_x"`
	MinY int `json:"min_y"`
	MaxX int `json:"max_x"`
	MaxY int `json:"max_y"`
}

// FindIslands flood-fills the signal-to-noise map snr (Width w, Height h)
// from every pixel >= seed through 8-connected pixels >= flood. It returns
// the islands and a label map (0 outside islands, else the island ID).
func FindIslands(snr []float64, w, h int, seed, flood float64) ([]Island, []int32) {
	labels := make([]int32, w*h)
	var out []Island
	var stack []int
	for p, v := range snr {
		if v < seed || labels[p] != 0 {
			continue
		}
		id := int32(len(out) + 1)
		isl := Island{ID: int(id), PeakSNR: math.Inf(-1), MinX: w, MinY: h, MaxX: -1, MaxY: -1}
		labels[p] = id
		stack = append(stack[:0], p)
		for len(stack) > 0 {
			q := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			isl.Pixels = append(isl.Pixels, q)
			x, y := q%w, q/w
			if snr[q] > isl.PeakSNR {
				isl.PeakSNR, isl.PeakX, isl.PeakY = snr[q], x, y
			}
			isl.MinX, isl.MaxX = min(isl.MinX, x), max(isl.MaxX, x)
			isl.MinY, isl.MaxY = min(isl.MinY, y), max(isl.MaxY, y)
			for dy := -1; dy <= 1; dy++ {
				yy := y + dy
				if yy < 0 || yy >= h {
					continue
				}
				for dx := -1; dx <= 1; dx++ {
					xx := x + dx
					if xx < 0 || xx >= w || (dx == 0 && dy == 0) {
						continue
					}
					r := yy*w + xx
					if labels[r] == 0 && snr[r] >= flood {
						labels[r] = id
						stack = append(stack, r)
					}
				}
			}
		}
		out = append(out, isl)
	}
	return out, labels
}
