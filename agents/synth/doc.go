// Package synth generates deterministic synthetic VLASS-like data with ground truth.
//
// Every generator takes an explicit seed and returns, next to the data, the
// truth it was built from (source lists, flagged cells, transient times), so
// that agents can be scored against known answers.
package synth
