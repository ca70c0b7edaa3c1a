package anomaly

import (
	"errors"
	"fmt"
	"math"
)

// Sentinel errors. Every error the package returns for bad input wraps one
// of them, so errors.Is works; the message names the field and its value.
var (
	// ErrBadImage reports an image that cannot be searched: empty, wrong
	// pixel count, non-finite pixels, or an impossible beam or WCS.
	ErrBadImage = errors.New("anomaly: invalid image")
	// ErrMismatch reports two images (or an image and its maps) that are
	// not on the same grid.
	ErrMismatch = errors.New("anomaly: images do not match")
	// ErrBadConfig reports an impossible configuration value.
	ErrBadConfig = errors.New("anomaly: invalid configuration")
)

// WCS is a SIN (orthographic) projection: pixel (RefX, RefY), zero-based, is
// at (RefRA, RefDec) in degrees; pixels are square with side CellDeg; RA
// increases to the left (CDELT1 = -CellDeg), Dec upwards.
type WCS struct {
	RefRA, RefDec float64
	RefX, RefY    float64
	CellDeg       float64
}

// PixToWorld converts zero-based pixel coordinates to RA (in [0, 360)) and
// Dec in degrees.
func (w WCS) PixToWorld(x, y float64) (ra, dec float64) {
	const d2r = math.Pi / 180
	l := -(x - w.RefX) * w.CellDeg * d2r
	m := (y - w.RefY) * w.CellDeg * d2r
	r2 := l*l + m*m
	if r2 > 1 {
		return math.NaN(), math.NaN()
	}
	n := math.Sqrt(1 - r2)
	sd, cd := math.Sincos(w.RefDec * d2r)
	dec = math.Asin(m*cd + n*sd)
	ra = math.Mod((w.RefRA*d2r+math.Atan2(l, n*cd-m*sd))/d2r, 360)
	if ra < 0 {
		ra += 360
	}
	return ra, dec / d2r
}

// WorldToPix converts RA and Dec in degrees to zero-based pixel coordinates
// (NaN on the far hemisphere).
func (w WCS) WorldToPix(ra, dec float64) (x, y float64) {
	const d2r = math.Pi / 180
	sd0, cd0 := math.Sincos(w.RefDec * d2r)
	sd, cd := math.Sincos(dec * d2r)
	sa, ca := math.Sincos((ra - w.RefRA) * d2r)
	if sd*sd0+cd*cd0*ca < 0 {
		return math.NaN(), math.NaN()
	}
	l := cd * sa
	m := sd*cd0 - cd*sd0*ca
	return w.RefX - l/d2r/w.CellDeg, w.RefY + m/d2r/w.CellDeg
}

// CellArcsec is the pixel side in arcseconds.
func (w WCS) CellArcsec() float64 { return w.CellDeg * 3600 }

// Beam is the restoring beam: FWHM axes in arcseconds and position angle in
// degrees east of north.
type Beam struct {
	MajArcsec float64 `json:"bmaj_arcsec"`
	MinArcsec float64 `json:"bmin_arcsec"`
	PADeg     float64 `json:"bpa_deg"`
}

// Image is a 2-D image in Jy/beam: Pix[y*Width+x] is column x of row y.
type Image struct {
	Width, Height int
	Pix           []float64
	WCS           WCS
	Beam          Beam
}

// Validate reports the first problem that makes im unusable, wrapping
// ErrBadImage; name labels the image in the message ("epoch 1", ...).
func (im *Image) Validate(name string) error {
	if im == nil {
		return fmt.Errorf("%w: %s is nil", ErrBadImage, name)
	}
	if im.Width <= 0 || im.Height <= 0 {
		return fmt.Errorf("%w: %s size = %dx%d: both sides must be positive", ErrBadImage, name, im.Width, im.Height)
	}
	if len(im.Pix) != im.Width*im.Height {
		return fmt.Errorf("%w: %s has %d pixels: want Width*Height = %d*%d = %d", ErrBadImage, name, len(im.Pix), im.Width, im.Height, im.Width*im.Height)
	}
	if !(im.WCS.CellDeg > 0) || math.IsInf(im.WCS.CellDeg, 0) {
		return fmt.Errorf("%w: %s WCS.CellDeg = %v: must be positive and finite", ErrBadImage, name, im.WCS.CellDeg)
	}
	if !(im.WCS.RefDec >= -90 && im.WCS.RefDec <= 90) || math.IsNaN(im.WCS.RefRA) || math.IsInf(im.WCS.RefRA, 0) {
		return fmt.Errorf("%w: %s WCS reference = (%v, %v): RA must be finite and Dec within [-90, 90]", ErrBadImage, name, im.WCS.RefRA, im.WCS.RefDec)
	}
	b := im.Beam
	if !(b.MajArcsec > 0) || !(b.MinArcsec > 0) || b.MinArcsec > b.MajArcsec || math.IsInf(b.MajArcsec, 0) || math.IsNaN(b.PADeg) {
		return fmt.Errorf("%w: %s beam = %+v: need 0 < MinArcsec <= MajArcsec, finite PA", ErrBadImage, name, b)
	}
	for i, v := range im.Pix {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: %s pixel (%d, %d) = %v: pixels must be finite (blank them with 0 or crop)", ErrBadImage, name, i%im.Width, i/im.Width, v)
		}
	}
	return nil
}

// sameGrid reports whether b is on a's pixel grid.
func sameGrid(a, b *Image) error {
	if a.Width != b.Width || a.Height != b.Height {
		return fmt.Errorf("%w: epoch 1 is %dx%d, epoch 2 is %dx%d", ErrMismatch, a.Width, a.Height, b.Width, b.Height)
	}
	wa, wb := a.WCS, b.WCS
	tol := 1e-6 * wa.CellDeg
	if math.Abs(wa.CellDeg-wb.CellDeg) > 1e-9*wa.CellDeg || math.Abs(wa.RefX-wb.RefX) > 1e-6 || math.Abs(wa.RefY-wb.RefY) > 1e-6 ||
		math.Abs(wa.RefDec-wb.RefDec) > tol || math.Abs(math.Remainder(wa.RefRA-wb.RefRA, 360)*math.Cos(wa.RefDec*math.Pi/180)) > tol {
		return fmt.Errorf("%w: WCS differ: epoch 1 %+v, epoch 2 %+v (regrid one epoch first)", ErrMismatch, wa, wb)
	}
	return nil
}

// beamPix returns the beam FWHM axes in pixels and its PA in radians.
func (im *Image) beamPix() (maj, mn, pa float64) {
	c := im.WCS.CellArcsec()
	return im.Beam.MajArcsec / c, im.Beam.MinArcsec / c, im.Beam.PADeg * math.Pi / 180
}

const fwhm = 2.3548200450309493 // FWHM / sigma of a Gaussian
