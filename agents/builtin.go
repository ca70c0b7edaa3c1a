package agents

import "fmt"

// Canonical names of the built-in agents.
const (
	NameAlphaCal            = "alphacal"
	NameImageReconstruction = "image-reconstruction"
	NameAnomalyDetection    = "anomaly-detection"
)

func f64(v float64) *float64 { return &v }

// AlphaCal returns the descriptor of the RFI flagging and calibration
// strategy agent. Defaults follow AOFlagger's generic strategy (three passes,
// threshold factors 4, 2, 1 on a base of 1.0, SIR eta 0.2) and a MAD
// baseline with k = 5.
func AlphaCal() Descriptor {
	return Descriptor{
		Name:        NameAlphaCal,
		Aliases:     []string{"AlphaCal"},
		Description: "RFI flagging (SumThreshold + SIR, or MAD clipping) and a calibration strategy chosen from the data's statistics",
		Params: []Param{
			{Name: "flagger", Type: String, Default: "sumthreshold", Enum: []string{"sumthreshold", "mad", "none"}, Description: "RFI flagging algorithm"},
			{Name: "base_threshold", Type: Number, Default: 1.0, Min: f64(0.1), Max: f64(10), Description: "SumThreshold base threshold factor (AOFlagger default 1.0)"},
			{Name: "iterations", Type: Integer, Default: int64(3), Min: f64(1), Max: f64(10), Description: "passes of the flagging strategy"},
			{Name: "sir_eta", Type: Number, Default: 0.2, Min: f64(0), Max: f64(1), Description: "SIR operator aggressiveness eta"},
			{Name: "mad_k", Type: Number, Default: 5.0, Min: f64(2), Max: f64(20), Description: "MAD clipping threshold in robust sigmas"},
			{Name: "rfi_strategy", Type: String, Default: "medium", Enum: []string{"low", "medium", "high", "high_sensitivity"}, Description: "flagging aggressiveness (the original platform's rfi_strategy)"},
			{Name: "bandpass_order", Type: Integer, Default: int64(5), Min: f64(3), Max: f64(7), Description: "polynomial bandpass order"},
			{Name: "solution_interval_s", Type: Number, Default: 60.0, Min: f64(1), Max: f64(3600), Description: "gain solution interval in seconds"},
		},
		BaseSeconds:      120,
		ParallelFraction: 0.8,
		MemoryMBPerGB:    150,
	}
}

// ImageReconstruction returns the descriptor of the imaging agent
// (gridding, FFT, CLEAN). Defaults follow CASA tclean (gain 0.1, Högbom)
// and the VLASS quick-look recipe (1 arcsec cells, robust 1.0, nsigma 4).
func ImageReconstruction() Descriptor {
	return Descriptor{
		Name:        NameImageReconstruction,
		Aliases:     []string{"ImageReconstruction", "imaging"},
		Description: "convolutional gridding, 2-D FFT, PSF, CLEAN deconvolution and restoration",
		Params: []Param{
			{Name: "image_size", Type: Integer, Default: int64(256), Min: f64(32), Max: f64(16384), PowerOfTwo: true, Description: "image side in pixels"},
			{Name: "cell_arcsec", Type: Number, Default: 1.0, Min: f64(0.01), Max: f64(60), Description: "pixel size in arcseconds (VLASS QL: 1.0)"},
			{Name: "deconvolver", Type: String, Default: "auto", Enum: []string{"auto", "hogbom", "cotton-schwab", "clark", "multiscale", "mtmfs", "none"}, Description: "CLEAN algorithm; auto chooses from the data"},
			{Name: "niter", Type: Integer, Default: int64(1000), Min: f64(0), Max: f64(1000000), Description: "maximum minor-cycle iterations"},
			{Name: "gain", Type: Number, Default: 0.1, Min: f64(0.001), Max: f64(1), Description: "loop gain"},
			{Name: "mgain", Type: Number, Default: 0.8, Min: f64(0.05), Max: f64(0.99), Description: "major-cycle gain for Cotton-Schwab"},
			{Name: "nsigma", Type: Number, Default: 4.0, Min: f64(0), Max: f64(100), Description: "stop at nsigma times the residual rms"},
			{Name: "weighting", Type: String, Default: "briggs", Enum: []string{"natural", "uniform", "briggs"}, Description: "visibility weighting"},
			{Name: "robust", Type: Number, Default: 1.0, Min: f64(-2), Max: f64(2), Description: "Briggs robustness (VLASS QL: 1.0)"},
		},
		Check: func(p map[string]any) error {
			if p["deconvolver"] == "cotton-schwab" || p["deconvolver"] == "auto" {
				if g, _ := p["gain"].(float64); g > 0.5 {
					return &ParamError{Field: "gain", Value: g, Msg: fmt.Sprintf("must be <= 0.5 with deconvolver %v", p["deconvolver"])}
				}
			}
			return nil
		},
		BaseSeconds:      300,
		ParallelFraction: 0.95,
		MemoryMBPerGB:    400,
	}
}

// AnomalyDetection returns the descriptor of the source-finding and
// transient agent. Defaults follow Aegean (seed 5 sigma, flood 4 sigma) and
// the VAST pipeline (|Vs| >= 4.3, |m| >= 0.26).
func AnomalyDetection() Descriptor {
	return Descriptor{
		Name:        NameAnomalyDetection,
		Aliases:     []string{"AnomalyDetection", "anomaly"},
		Description: "background and rms maps, source finding, two-epoch differencing and transient/variable classification",
		Params: []Param{
			{Name: "seed_sigma", Type: Number, Default: 5.0, Min: f64(2), Max: f64(100), Description: "island seed threshold in sigmas"},
			{Name: "flood_sigma", Type: Number, Default: 4.0, Min: f64(1), Max: f64(100), Description: "island flood threshold in sigmas"},
			{Name: "box_pixels", Type: Integer, Default: int64(32), Min: f64(4), Max: f64(1024), Description: "background/rms box size"},
			{Name: "min_vs", Type: Number, Default: 4.3, Min: f64(0), Max: f64(100), Description: "two-epoch variability statistic threshold |Vs|"},
			{Name: "min_m", Type: Number, Default: 0.26, Min: f64(0), Max: f64(2), Description: "modulation index threshold |m|"},
			{Name: "reference_dataset_id", Type: String, Default: "", Description: "dataset of the earlier epoch; empty means single-epoch source finding"},
		},
		Check: func(p map[string]any) error {
			seed, _ := p["seed_sigma"].(float64)
			flood, _ := p["flood_sigma"].(float64)
			if flood > seed {
				return &ParamError{Field: "flood_sigma", Value: flood, Msg: fmt.Sprintf("must be <= seed_sigma (%v)", seed)}
			}
			return nil
		},
		BaseSeconds:      90,
		ParallelFraction: 0.7,
		MemoryMBPerGB:    200,
	}
}
