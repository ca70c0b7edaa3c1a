// Package imaging is the ImageReconstruction agent: it turns calibrated
// interferometer visibilities into a restored sky image.
//
// The pipeline is the classic one (CASA tclean / WSClean):
//
//   - imaging weights: natural, uniform or Briggs (robust) from the gridded
//     weight density;
//   - convolutional gridding with a Kaiser–Bessel kernel (width 7,
//     oversampling 63, beta from Beatty et al. 2005 for the padding factor),
//     with the Bessel I0 function implemented here ([BesselI0]);
//   - a 2-D FFT built from gonum's 1-D transform ([FFT2]), rows split over
//     the available cores;
//   - grid correction by the kernel's Fourier transform, normalisation by
//     the PSF peak, and the PSF (dirty beam) imaged the same way;
//   - Högbom CLEAN ([Hogbom]) and Cotton–Schwab major/minor cycles (model
//     visibilities predicted by degridding and subtracted from the data),
//     with loop gain, niter, an absolute threshold and an nsigma threshold
//     from the robust (1.4826 MAD) residual rms, and mgain; and Clark minor
//     cycles ([Clark]: iterations on the list of bright pixels with a PSF
//     patch) inside the same major cycles, for large images;
//   - a restoring beam fitted to the PSF main lobe (pixels above 0.35 of the
//     peak, connected to the centre, as CASA does) and restored/residual
//     images.
//
// [Choose] selects the deconvolver by explicit rules on measured features
// (extended emission, fractional bandwidth, PSF sidelobes, image size) and
// returns the reason. [Run] and [NewAgent] make the package an agent of the
// agents framework, imaging synthetic VLASS-like data from package synth.
//
// The imager ignores the w term (no w-projection): it is meant for fields
// small compared with the primary beam, as in the tests and examples.
package imaging
