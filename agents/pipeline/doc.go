// Package pipeline runs the three radio-astronomy agents as one
// multi-stage job: AlphaCal (RFI flagging) → ImageReconstruction (gridding,
// FFT, CLEAN) → AnomalyDetection (source finding and two-epoch
// differencing), on seeded synthetic VLASS-like data with ground truth.
//
// [Run] synthesises two epochs of visibilities of one field (steady
// sources, a variable and a transient that appears in epoch 2), each with
// a dynamic spectrum whose RFI also corrupts the visibilities; flags each
// dynamic spectrum and applies the flags; images both epochs with a common
// restoring beam; finds sources and compares the epochs; and produces FITS
// images (restored, residual, PSF, reference epoch, difference), PNG
// previews and catalogue, anomalies and summary JSON documents, in memory
// and, with Config.OutputDir, on disk.
//
// Each stage reports "stage <name> started" (with ": <detail>" while it
// runs) and "stage <name> completed" (agents.StageNote) with progress
// weighted by [Stages], so that run as
// the agent [Name] ("pipeline") under the orchestrator the stage changes
// become job.progress events. The command cmd/horizons-pipeline runs it
// from the shell.
package pipeline
