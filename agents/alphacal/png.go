package alphacal

import (
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
)

// WriteMaskPNG writes a PNG preview of a flagged dynamic spectrum: time
// runs down, frequency to the right; unflagged samples are grey (the
// residual p from -3 to +6 noise scales), flagged samples red, and, when
// truth is not nil, false positives yellow and missed RFI blue.
func WriteMaskPNG(w io.Writer, p Plane, scale float64, mask, truth []bool) error {
	if err := p.validate(); err != nil {
		return err
	}
	if err := checkMask(mask, len(p.Values)); err != nil {
		return err
	}
	if truth != nil {
		if err := checkMask(truth, len(p.Values)); err != nil {
			return err
		}
	}
	if !(scale > 0) || math.IsInf(scale, 0) {
		scale = 1
	}
	img := image.NewRGBA(image.Rect(0, 0, p.Channels, p.Times))
	for t := range p.Times {
		for c := range p.Channels {
			i := t*p.Channels + c
			var col color.RGBA
			f := mask[i]
			tr := truth != nil && truth[i]
			switch {
			case f && (truth == nil || tr):
				col = color.RGBA{220, 30, 30, 255}
			case f:
				col = color.RGBA{240, 200, 0, 255}
			case tr:
				col = color.RGBA{40, 90, 240, 255}
			default:
				v := (p.Values[i]/scale + 3) / 9
				g := uint8(255 * math.Min(1, math.Max(0, v)))
				col = color.RGBA{g, g, g, 255}
			}
			img.SetRGBA(c, t, col)
		}
	}
	return png.Encode(w, img)
}
