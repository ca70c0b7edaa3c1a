package imaging

import (
	"fmt"
	"sync"

	"gonum.org/v1/gonum/dsp/fourier"
)

// FFT2 transforms the n×n row-major grid in place with the unnormalised
// 2-D discrete Fourier transform: exponent -2 pi i (forward) or +2 pi i
// (inverse = true). It does rows, a transpose, rows again and a transpose
// back, splitting rows over workers goroutines (<= 0 means 1), each with its
// own gonum CmplxFFT.
func FFT2(grid []complex128, n int, inverse bool, workers int) error {
	if n < 1 || len(grid) != n*n {
		return fmt.Errorf("%w: FFT2 grid has %d cells, want n*n = %d", ErrInput, len(grid), n*n)
	}
	fftRows(grid, n, inverse, workers, 0, n, nil)
	transpose(grid, n, workers)
	fftRows(grid, n, inverse, workers, 0, n, nil)
	transpose(grid, n, workers)
	return nil
}

// fftRows transforms rows [ya, yb) of the n×n grid in place, split over
// workers. With use non-nil, rows y with !use[y] are known to be zero
// (common in a uv grid) and are left alone: their transform is zero.
func fftRows(grid []complex128, n int, inverse bool, workers, ya, yb int, use []bool) {
	if workers < 1 {
		workers = 1
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			t := fourier.NewCmplxFFT(n)
			span := yb - ya
			for y := ya + w*span/workers; y < ya+(w+1)*span/workers; y++ {
				row := grid[y*n : (y+1)*n]
				if use != nil && !use[y] {
					continue
				}
				if inverse {
					t.Sequence(row, row)
				} else {
					t.Coefficients(row, row)
				}
			}
		}(w)
	}
	wg.Wait()
}

// transpose transposes the n×n matrix in place, in 32×32 blocks.
func transpose(a []complex128, n, workers int) {
	const b = 32
	nb := (n + b - 1) / b
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for bi := w; bi < nb; bi += workers {
				for bj := bi; bj < nb; bj++ {
					for i := bi * b; i < min((bi+1)*b, n); i++ {
						j0 := bj * b
						if bi == bj {
							j0 = i + 1
						}
						for j := j0; j < min((bj+1)*b, n); j++ {
							a[i*n+j], a[j*n+i] = a[j*n+i], a[i*n+j]
						}
					}
				}
			}
		}(w)
	}
	wg.Wait()
}
