package imaging

import (
	"fmt"
	"math"
)

// BesselI0 returns the modified Bessel function of the first kind of order
// zero, I0(x) = sum_k ((x/2)^k / k!)^2. For |x| > 700 it uses the asymptotic
// expansion e^x / sqrt(2 pi x) (1 + 1/(8x) + 9/(2(8x)^2) + ...).
func BesselI0(x float64) float64 {
	x = math.Abs(x)
	if math.IsNaN(x) {
		return math.NaN()
	}
	if x <= 700 {
		sum, term := 1.0, 1.0
		q := x * x / 4
		for k := 1; k < 500; k++ {
			term *= q / float64(k*k)
			sum += term
			if term < 1e-17*sum {
				break
			}
		}
		return sum
	}
	// Asymptotic series: sum_k prod_{j<k} (2j+1)^2 / (k! (8x)^k).
	sum, term := 1.0, 1.0
	for k := 1; k < 12; k++ {
		term *= float64((2*k-1)*(2*k-1)) / (float64(k) * 8 * x)
		sum += term
	}
	return math.Exp(x) / math.Sqrt(2*math.Pi*x) * sum
}

// Kernel is a Kaiser–Bessel gridding convolution function
// k(t) = I0(beta sqrt(1 - (2t/W)^2)) for |t| <= W/2 (t in grid cells),
// tabulated at Oversample points per cell.
type Kernel struct {
	// Width W is the support in grid cells.
	Width int
	// Oversample is the number of table points per cell.
	Oversample int
	// Beta is the Kaiser–Bessel shape parameter.
	Beta  float64
	table []float64 // k(s/Oversample), s = 0 .. len-1
}

// NewKaiserBessel returns the Kaiser–Bessel kernel of the given width
// (cells, 3–15) and oversampling (1–1024) for a grid padded by factor
// padding (>= 1). Beta follows Beatty et al. (2005):
// beta = pi sqrt((W/a)^2 (a - 1/2)^2 - 0.8) with a = max(padding, 1).
func NewKaiserBessel(width, oversample int, padding float64) (*Kernel, error) {
	if width < 3 || width > 15 {
		return nil, fmt.Errorf("%w: kernel width = %d: must be between 3 and 15", ErrConfig, width)
	}
	if oversample < 1 || oversample > 1024 {
		return nil, fmt.Errorf("%w: kernel oversample = %d: must be between 1 and 1024", ErrConfig, oversample)
	}
	if !(padding >= 1) || math.IsInf(padding, 0) {
		return nil, fmt.Errorf("%w: padding = %v: must be >= 1", ErrConfig, padding)
	}
	w := float64(width)
	b2 := (w/padding)*(w/padding)*(padding-0.5)*(padding-0.5) - 0.8
	if b2 <= 0 {
		return nil, fmt.Errorf("%w: kernel width %d with padding %v gives no valid Kaiser–Bessel beta", ErrConfig, width, padding)
	}
	k := &Kernel{Width: width, Oversample: oversample, Beta: math.Pi * math.Sqrt(b2)}
	n := int(w/2*float64(oversample)) + 2
	k.table = make([]float64, n)
	for s := range k.table {
		k.table[s] = k.Value(float64(s) / float64(oversample))
	}
	return k, nil
}

// Value evaluates the kernel at t cells from its centre (0 outside the
// support).
func (k *Kernel) Value(t float64) float64 {
	x := 2 * t / float64(k.Width)
	if x*x > 1 {
		return 0
	}
	return BesselI0(k.Beta * math.Sqrt(1-x*x))
}

// lookup returns the tabulated kernel at t cells, linearly interpolated
// between table points (nearest-point lookup would quantise the
// visibility's position and give phase errors growing across the image).
func (k *Kernel) lookup(t float64) float64 {
	f := math.Abs(t) * float64(k.Oversample)
	s := int(f)
	if s+1 >= len(k.table) {
		return 0
	}
	a := f - float64(s)
	return k.table[s] + a*(k.table[s+1]-k.table[s])
}

// Correction returns the grid-correction function for an n-point grid:
// the Fourier transform of the (tabulated) kernel, c[x] = integral of k(t)
// cos(2 pi t (x - n/2) / n) dt, evaluated by summing the table. Dividing an
// image made by gridding with k by c[x] c[y] undoes the kernel's taper.
func (k *Kernel) Correction(n int) []float64 {
	c := make([]float64, n)
	os := float64(k.Oversample)
	for x := range c {
		f := 2 * math.Pi * float64(x-n/2) / float64(n)
		sum := k.table[0]
		for s := 1; s < len(k.table); s++ {
			sum += 2 * k.table[s] * math.Cos(f*float64(s)/os)
		}
		c[x] = sum / os
	}
	return c
}
