// Package anomaly is the AnomalyDetection agent: source finding on radio
// images and two-epoch transient and variability detection, in pure Go.
//
// The pipeline follows the published finders (Aegean, PyBDSF, the VAST
// pipeline):
//
//   - [BackgroundRMS]: background and noise maps from the sigma-clipped
//     median and 1.4826·MAD of a box around each node of a grid,
//     bilinearly interpolated (BANE-like);
//   - [FindIslands]: 8-connected flood fill from pixels above the seed
//     threshold (default 5σ) through pixels above the flood threshold
//     (default 4σ);
//   - [Find]: one elliptical Gaussian per island summit, fitted by
//     Levenberg–Marquardt with an analytic Jacobian, giving position, peak,
//     integrated flux, size and position angle with Condon (1997) errors,
//     and RA/Dec through the image's SIN projection;
//   - [Compare]: both epochs searched, cross-matched ([Match]), forced
//     photometry where a source is missing, the difference image searched
//     in both signs, and every change classified as a new source, a
//     disappeared source, a variable (|Vs| >= 4.3 and |m| >= 0.26, the VAST
//     defaults, see [VsM]) or an artefact, with significance, severity and
//     a one-line description;
//   - [Evaluate] and [Recovery]: completeness, reliability and flux ratios
//     against a truth list, used by the tests with the synthetic fields of
//     package synth.
//
// [Run] and [NewAgent] attach the pipeline to the agents.AnomalyDetection
// descriptor: the agent synthesises its epochs deterministically from the
// dataset ids and the run's seed.
//
// Inputs are validated: empty images, non-finite pixels, mismatched grids
// or beams and impossible settings are errors wrapping [ErrBadImage],
// [ErrMismatch] or [ErrBadConfig] that name the field and the value.
package anomaly
