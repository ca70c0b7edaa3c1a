package synth

import (
	"errors"
	"math"
	"math/cmplx"
	"testing"
)

func TestDynamicSpectrumDeterministic(t *testing.T) {
	a, err := NewDynamicSpectrum(nil, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewDynamicSpectrum(nil, 7)
	c, _ := NewDynamicSpectrum(nil, 8)
	if a.Times != 256 || a.Channels != 256 || len(a.Data) != 256*256 {
		t.Fatalf("default shape %d x %d (%d samples)", a.Times, a.Channels, len(a.Data))
	}
	same, diff := true, false
	for i := range a.Data {
		if a.Data[i] != b.Data[i] || a.Truth[i] != b.Truth[i] {
			same = false
		}
		if a.Data[i] != c.Data[i] {
			diff = true
		}
	}
	if !same {
		t.Error("same seed gave different spectra")
	}
	if !diff {
		t.Error("different seeds gave identical spectra")
	}
}

func TestDynamicSpectrumTruth(t *testing.T) {
	d, err := NewDynamicSpectrum(&SpectrumConfig{Times: 128, Channels: 96, RFI: &RFIConfig{Narrowband: 2, Broadband: 1, Impulsive: 5, WeakLines: 2, WeakLineLength: 64}}, 3)
	if err != nil {
		t.Fatal(err)
	}
	count := map[RFIKind]int{}
	want := make([]uint8, len(d.Truth))
	for _, in := range d.Injections {
		count[in.Kind]++
		for tt := in.TimeStart; tt < in.TimeEnd; tt++ {
			for c := in.ChanStart; c < in.ChanEnd; c++ {
				want[tt*d.Channels+c] |= 1 << uint(in.Kind)
			}
		}
		switch in.Kind {
		case RFIWeakLine:
			if in.TimeEnd-in.TimeStart != 64 || in.Amp != 2 || in.ChanEnd-in.ChanStart != 1 {
				t.Errorf("weak line %+v, want 64 samples at 2 sigma in one channel", in)
			}
		case RFIBroadband:
			if in.ChanStart != 0 || in.ChanEnd != d.Channels || in.TimeEnd-in.TimeStart > 2 || in.Amp < 3 || in.Amp > 10 {
				t.Errorf("broadband burst %+v", in)
			}
		case RFINarrowband:
			if in.TimeEnd-in.TimeStart < d.Times/2 || in.Amp < 3 || in.Amp > 10 {
				t.Errorf("narrowband %+v", in)
			}
		case RFIImpulsive:
			if in.TimeEnd-in.TimeStart != 1 || in.Amp < 10 || in.Amp > 50 {
				t.Errorf("impulse %+v", in)
			}
		}
	}
	if count[RFINarrowband] != 2 || count[RFIBroadband] != 1 || count[RFIImpulsive] != 5 || count[RFIWeakLine] != 2 {
		t.Errorf("injection counts %v", count)
	}
	for i := range want {
		if want[i] != d.KindMask[i] || (want[i] != 0) != d.Truth[i] {
			t.Fatalf("sample %d: kind mask %b truth %v, injections say %b", i, d.KindMask[i], d.Truth[i], want[i])
		}
	}
	wl := d.TruthOf(RFIWeakLine)
	n := 0
	for _, v := range wl {
		if v {
			n++
		}
	}
	if n > 128 || n < 64 { // two lines of 64, possibly overlapping only in time
		t.Errorf("weak-line truth has %d samples, want 128", n)
	}
}

func TestDynamicSpectrumNoiseAndSignal(t *testing.T) {
	d, err := NewDynamicSpectrum(&SpectrumConfig{Sigma: 2, NoiseOnly: true, RFI: &RFIConfig{}}, 11)
	if err != nil {
		t.Fatal(err)
	}
	var s2 float64
	for _, v := range d.Data {
		s2 += real(v)*real(v) + imag(v)*imag(v)
	}
	sd := math.Sqrt(s2 / float64(2*len(d.Data)))
	if math.Abs(sd-2) > 0.02 {
		t.Errorf("noise sigma %.4f, want 2", sd)
	}
	for _, v := range d.Truth {
		if v {
			t.Fatal("no RFI requested but the truth mask is set")
		}
	}
	// With a calibrator the mean over time of V/gain recovers the bandpass.
	d, _ = NewDynamicSpectrum(&SpectrumConfig{RFI: &RFIConfig{}}, 12)
	var worst float64
	for c := 0; c < d.Channels; c++ {
		var m complex128
		for tt := 0; tt < d.Times; tt++ {
			m += d.Data[tt*d.Channels+c] / d.Gain[tt]
		}
		m /= complex(float64(d.Times), 0)
		worst = max(worst, cmplx.Abs(m-d.Bandpass[c]))
	}
	// The mean of 256 samples has sigma 1/16 per component: 5 sigma is 0.31 in modulus.
	if worst > 0.35 {
		t.Errorf("bandpass recovered to %.3f at worst, want < 0.35", worst)
	}
	if m := cmplx.Abs(d.Bandpass[d.Channels/2]); m < 5*0.3 || m > 5*1.7 {
		t.Errorf("bandpass amplitude %.2f far from the calibrator amplitude 5", m)
	}
}

func TestDynamicSpectrumConfigErrors(t *testing.T) {
	for _, c := range []SpectrumConfig{
		{Times: 2},
		{Channels: -1},
		{Sigma: math.NaN()},
		{Sigma: -1},
		{BandpassOrder: 12},
		{BandpassRipple: 2},
		{RFI: &RFIConfig{Narrowband: -1}},
		{RFI: &RFIConfig{ImpulsiveAmp: [2]float64{5, 1}}},
		{RFI: &RFIConfig{WeakLines: 1, WeakLineLength: 1000}},
		{Channels: 8, RFI: &RFIConfig{Narrowband: 5}},
		{Times: 8, RFI: &RFIConfig{Broadband: 3}},
	} {
		_, err := NewDynamicSpectrum(&c, 1)
		if !errors.Is(err, ErrSpectrumConfig) {
			t.Errorf("%+v: error %v, want ErrSpectrumConfig", c, err)
		}
	}
}
