// Package alphacal is the AlphaCal agent: RFI flagging of time × frequency
// dynamic spectra and a calibration strategy chosen from the data's
// statistics.
//
// Flagging follows AOFlagger (Offringa et al. 2010, 2012), re-implemented
// from the published algorithm descriptions:
//
//   - [SumThreshold] tests windows of 1, 2, 4, …, 256 samples in time and in
//     frequency; the mean of a window's unflagged samples is compared with
//     χ_M, by default AOFlagger's code law χ_M = χ₁·1.5^{log₂M}/M
//     ([AOFlaggerLaw]; the law is a pluggable [ThresholdLaw]), with χ₁ = 6 ×
//     level × a noise scale (given, or the winsorized standard deviation of
//     the data). Masks accumulate, so long weak RFI trips the long windows.
//   - [SIR] is the scale-invariant rank operator (O(N) prefix sums, η = 0.2
//     by default).
//   - [Flag] runs the generic-minimal strategy: passes at threshold factors
//     4 and 2 (SumThreshold, timestep and channel thresholding, Gaussian
//     low-pass background re-estimated with the mask), then a final
//     SumThreshold at the base level, SIR and timestep thresholding at 4σ.
//     Complex data are background-subtracted in the complex plane (a smooth
//     calibrator × bandpass × gain term is removed whatever its brightness)
//     and flagged on the residual amplitude minus its own smooth level, with
//     the noise scale that amplitude has for pure noise (Rayleigh).
//   - [FlagMAD] is the baseline: the same background subtraction and
//     clipping at k × 1.4826 × MAD.
//
// Deliberate differences from AOFlagger: the timestep and channel tests
// threshold a winsorized mean of the residual rather than its RMS (a few
// bright channels do not flag a whole timestep, nor does a background
// over-estimated next to a strong burst), only upward outliers are flagged,
// and the winsorized standard deviation is corrected by 1.214 (exact for
// Gaussian data at 10 %) instead of 1.54.
//
// [Score] compares a mask with the truth (recall, false-positive rate,
// precision, F1, MCC). [Calibrate] measures the noise, the RFI occupancy per
// kind, the bandpass (a complex Legendre polynomial of order 3–7 chosen by
// the Bayesian information criterion) and the gain stability, and chooses
// flagging aggressiveness, bandpass order and solution interval with the
// reason for each. [Run] is the agent: it synthesises a dataset
// deterministically from its id (package synth), flags, chooses the
// strategy and scores against the injected truth.
package alphacal
