package pipeline

import (
	"errors"
	"fmt"
	"math"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/agents/synth"
)

// ErrConfig reports an impossible pipeline configuration. Every error
// [Run] returns for a bad Config wraps it and names the field and value.
var ErrConfig = errors.New("pipeline: invalid configuration")

// Stage names, in the order the pipeline runs them.
const (
	StageSynthesis = "synthesis"
	StageAlphaCal  = "alphacal"
	StageImaging   = "imaging"
	StageAnomaly   = "anomaly"
	StageOutputs   = "outputs"
)

// Stages lists the stage names in run order with their share of the
// reported progress in percent (they add up to 100).
var Stages = []struct {
	Name   string
	Weight float64
}{
	{StageSynthesis, 10},
	{StageAlphaCal, 15},
	{StageImaging, 50},
	{StageAnomaly, 20},
	{StageOutputs, 5},
}

// Flaggers the pipeline can run in its AlphaCal stage.
const (
	FlaggerSumThreshold = "sumthreshold"
	FlaggerMAD          = "mad"
	FlaggerNone         = "none"
)

// Config configures [Run]. The zero value (or nil) is a 256 × 256 field at
// 1″ observed twice by the VLA in B configuration (27 antennas, 48
// integrations of 30 s, 32 channels over 2–4 GHz, about 540 000
// visibilities per epoch) with RFI, six steady point sources, one
// transient that appears in the second epoch and one variable source.
type Config struct {
	// ImageSize is the image side in pixels: even, 64–2048; 0 means 256.
	ImageSize int
	// CellArcsec is the pixel size; 0 means 1 (VLASS quick look).
	CellArcsec float64
	// Antennas is the number of VLA antennas, 2–27; 0 means 27.
	Antennas int
	// Times is the number of integrations per epoch, 8–1024; 0 means 48.
	Times int
	// Channels is the number of channels over 2–4 GHz, 8–1024; 0 means 32.
	Channels int
	// IntegrationS is the integration time, 1–600 s; 0 means 30.
	IntegrationS float64
	// NoiseJy is the expected rms of each epoch's naturally weighted image
	// before flagging; 0 means 100 µJy/beam (about the VLASS epoch goal).
	NoiseJy float64
	// Sources is the number of steady point sources, 0–200; 0 means 6.
	// Use NoSteady for none.
	Sources  int
	NoSteady bool
	// MinSNR and MaxSNR bound the steady sources' peak SNR (log-uniform);
	// 0 means 15 and 150.
	MinSNR, MaxSNR float64
	// TransientSNR is the SNR of the source that appears in epoch 2; 0
	// means 30.
	TransientSNR float64
	// VariableSNR is the epoch-1 SNR of the variable source and
	// VariableFactor its epoch-2/epoch-1 flux ratio; 0 means 40 and 0.3.
	VariableSNR, VariableFactor float64
	// RFI is the RFI mix of each epoch's dynamic spectrum; nil means two
	// narrowband channels, one broadband burst, one impulse per 200
	// samples and one weak 2σ line of min(64, Times) integrations.
	RFI *synth.RFIConfig
	// RFIScale converts RFI amplitudes in dynamic-spectrum sigmas into
	// sigmas of one visibility; 0 means 1.
	RFIScale float64
	// Flagger is sumthreshold (AOFlagger's strategy), mad or none; ""
	// means sumthreshold.
	Flagger string
	// Deconvolver is the imaging deconvolver (auto, hogbom, cotton-schwab,
	// clark, multiscale, mtmfs, none); "" means auto.
	Deconvolver string
	// Niter caps CLEAN iterations per epoch; 0 means 2000.
	Niter int
	// OutputDir, when set, receives the FITS images, PNG previews and JSON
	// documents (created if missing); "" keeps everything in memory.
	OutputDir string
	// Progress, when set, receives weighted progress in percent with the
	// notes "stage <name> started", "stage <name> started: <detail>" and
	// "stage <name> completed" (see agents.StageNote).
	Progress agents.ProgressFunc
}

func (c *Config) withDefaults() (Config, error) {
	var o Config
	if c != nil {
		o = *c
	}
	bad := func(field string, v any, msg string) (Config, error) {
		return Config{}, fmt.Errorf("%w: %s = %v: %s", ErrConfig, field, v, msg)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"CellArcsec", o.CellArcsec}, {"IntegrationS", o.IntegrationS}, {"NoiseJy", o.NoiseJy}, {"MinSNR", o.MinSNR},
		{"MaxSNR", o.MaxSNR}, {"TransientSNR", o.TransientSNR}, {"VariableSNR", o.VariableSNR},
		{"VariableFactor", o.VariableFactor}, {"RFIScale", o.RFIScale}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return bad(f.name, f.v, "must be finite")
		}
	}
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	if o.ImageSize == 0 {
		o.ImageSize = 256
	}
	if o.ImageSize < 64 || o.ImageSize > 2048 || o.ImageSize%2 != 0 {
		return bad("ImageSize", o.ImageSize, "must be even and in [64, 2048]")
	}
	def(&o.CellArcsec, 1)
	if !(o.CellArcsec >= 0.05 && o.CellArcsec <= 10) {
		return bad("CellArcsec", o.CellArcsec, "must be in [0.05, 10]")
	}
	if o.Antennas == 0 {
		o.Antennas = 27
	}
	if o.Antennas < 2 || o.Antennas > 27 {
		return bad("Antennas", o.Antennas, "must be in [2, 27]")
	}
	if o.Times == 0 {
		o.Times = 48
	}
	if o.Times < 8 || o.Times > 1024 {
		return bad("Times", o.Times, "must be in [8, 1024]")
	}
	if o.Channels == 0 {
		o.Channels = 32
	}
	if o.Channels < 8 || o.Channels > 1024 {
		return bad("Channels", o.Channels, "must be in [8, 1024]")
	}
	def(&o.IntegrationS, 30)
	if !(o.IntegrationS >= 1 && o.IntegrationS <= 600) {
		return bad("IntegrationS", o.IntegrationS, "must be in [1, 600] seconds")
	}
	if dur := float64(o.Times-1) * o.IntegrationS / 3600; dur > 12 {
		return bad("Times", o.Times, fmt.Sprintf("with IntegrationS %g s the track lasts %.1f h (> 12 h)", o.IntegrationS, dur))
	}
	if nv := o.Antennas * (o.Antennas - 1) / 2 * o.Times * o.Channels; nv > 20_000_000 {
		return bad("Times", o.Times, fmt.Sprintf("%d visibilities per epoch (Antennas %d, Channels %d): more than 20 million", nv, o.Antennas, o.Channels))
	}
	def(&o.NoiseJy, 100e-6)
	if !(o.NoiseJy > 0 && o.NoiseJy <= 1) {
		return bad("NoiseJy", o.NoiseJy, "must be in (0, 1] Jy/beam")
	}
	if o.Sources == 0 && !o.NoSteady {
		o.Sources = 6
	}
	if o.NoSteady {
		o.Sources = 0
	}
	if o.Sources < 0 || o.Sources > 200 {
		return bad("Sources", o.Sources, "must be in [0, 200]")
	}
	def(&o.MinSNR, 15)
	def(&o.MaxSNR, 150)
	if !(o.MinSNR >= 1 && o.MaxSNR >= o.MinSNR && o.MaxSNR <= 1e5) {
		return bad("MaxSNR", o.MaxSNR, fmt.Sprintf("must be >= MinSNR (%v) >= 1 and <= 1e5", o.MinSNR))
	}
	def(&o.TransientSNR, 30)
	if !(o.TransientSNR > 0 && o.TransientSNR <= 1e5) {
		return bad("TransientSNR", o.TransientSNR, "must be in (0, 1e5]")
	}
	def(&o.VariableSNR, 40)
	if !(o.VariableSNR > 0 && o.VariableSNR <= 1e5) {
		return bad("VariableSNR", o.VariableSNR, "must be in (0, 1e5]")
	}
	def(&o.VariableFactor, 0.3)
	if !(o.VariableFactor > 0 && o.VariableFactor <= 100) {
		return bad("VariableFactor", o.VariableFactor, "must be in (0, 100]")
	}
	def(&o.RFIScale, 1)
	if !(o.RFIScale > 0 && o.RFIScale <= 1000) {
		return bad("RFIScale", o.RFIScale, "must be in (0, 1000]")
	}
	if o.RFI == nil {
		o.RFI = &synth.RFIConfig{Narrowband: 2, Broadband: 1, Impulsive: max(1, o.Times*o.Channels/200), WeakLines: 1, WeakLineLength: min(64, o.Times)}
	} else {
		r := *o.RFI
		o.RFI = &r
	}
	if o.Flagger == "" {
		o.Flagger = FlaggerSumThreshold
	}
	switch o.Flagger {
	case FlaggerSumThreshold, FlaggerMAD, FlaggerNone:
	default:
		return bad("Flagger", o.Flagger, "must be sumthreshold, mad or none")
	}
	if o.Deconvolver == "" {
		o.Deconvolver = "auto"
	}
	switch o.Deconvolver {
	case "auto", "hogbom", "cotton-schwab", "clark", "multiscale", "mtmfs", "none":
	default:
		return bad("Deconvolver", o.Deconvolver, "must be auto, hogbom, cotton-schwab, clark, multiscale, mtmfs or none")
	}
	if o.Niter == 0 {
		o.Niter = 2000
	}
	if o.Niter < 0 || o.Niter > 1_000_000 {
		return bad("Niter", o.Niter, "must be in [0, 1000000]")
	}
	return o, nil
}
