package alphacal

import (
	"errors"
	"fmt"
	"math"
	"math/cmplx"
	"runtime"
	"sync"
)

// ErrInvalidInput reports data or parameters the flagger cannot work on
// (empty or non-finite data, mismatched shapes, impossible settings).
var ErrInvalidInput = errors.New("alphacal: invalid input")

func invalid(field string, v any, msg string) error {
	return fmt.Errorf("%w: %s = %v: %s", ErrInvalidInput, field, v, msg)
}

// Plane is a real time × frequency image: Values[t*Channels+c] is timestep
// t, channel c. Time is the "horizontal" axis of AOFlagger's terminology.
type Plane struct {
	Times, Channels int
	Values          []float64
}

// Spectrum is a complex time × frequency block of visibilities of one
// baseline and polarisation: Data[t*Channels+c]. Amplitude-only data can be
// passed as real parts.
type Spectrum struct {
	Times, Channels int
	Data            []complex128
}

func checkShape(times, chans, n int) error {
	if times <= 0 || chans <= 0 {
		return invalid("shape", fmt.Sprintf("%d x %d", times, chans), "times and channels must be positive")
	}
	if n != times*chans {
		return invalid("data length", n, fmt.Sprintf("does not match %d times x %d channels = %d", times, chans, times*chans))
	}
	return nil
}

func (p Plane) validate() error {
	if err := checkShape(p.Times, p.Channels, len(p.Values)); err != nil {
		return err
	}
	for i, v := range p.Values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return invalid(fmt.Sprintf("value[t=%d, c=%d]", i/p.Channels, i%p.Channels), v, "must be finite")
		}
	}
	return nil
}

func (s Spectrum) validate() error {
	if err := checkShape(s.Times, s.Channels, len(s.Data)); err != nil {
		return err
	}
	for i, v := range s.Data {
		if cmplx.IsNaN(v) || cmplx.IsInf(v) {
			return invalid(fmt.Sprintf("data[t=%d, c=%d]", i/s.Channels, i%s.Channels), v, "must be finite")
		}
	}
	return nil
}

func checkMask(mask []bool, n int) error {
	if len(mask) != n {
		return invalid("mask length", len(mask), fmt.Sprintf("must equal the number of samples %d", n))
	}
	return nil
}

// parallelFor runs f over [0, n) split into contiguous ranges, one per
// available core, when the work (n × cost) is large enough to pay for the
// goroutines.
func parallelFor(n, cost int, f func(lo, hi int)) {
	w := runtime.GOMAXPROCS(0)
	if w > n {
		w = n
	}
	if w <= 1 || n*cost < 1<<15 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for i := range w {
		lo, hi := i*n/w, (i+1)*n/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}
