// Package fits reads and writes 2-D FITS images (a primary HDU with
// BITPIX -32) with SIN-projection celestial WCS keywords, the restoring
// beam (BMAJ, BMIN, BPA) and units, so that images open in DS9, CASA and
// astropy; and writes PNG previews with the standard library.
//
// Only what imaging products need is supported: one primary HDU, 2 axes
// (or more axes of length 1, as CASA writes frequency and Stokes axes),
// BITPIX -32 or -64 on reading, -32 on writing, BSCALE/BZERO honoured on
// reading. Header cards are read with their comments and kept in order.
package fits
