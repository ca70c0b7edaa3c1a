// Package agents defines what an agent is to Cosmic Horizons: a named unit of
// radio-astronomy work (RFI flagging and calibration, image reconstruction,
// anomaly detection, or any agent a user registers) with validated
// parameters, a cost and duration estimate, and a Run method that reports its
// progress.
//
// An [Agent] is usually built from a [Descriptor]: a declarative list of
// parameters ([Param]) with types, defaults and bounds, from which parameter
// validation, defaulting and documentation follow, plus an optional run
// function. The descriptors of the three built-in agents are returned by
// [AlphaCal], [ImageReconstruction] and [AnomalyDetection]; their algorithms
// live in the subpackages alphacal, imaging and anomaly, which attach a run
// function to the same descriptors.
//
// A [Registry] maps names and aliases (the original platform's
// "AlphaCal", "ImageReconstruction" and "AnomalyDetection") to agents.
package agents
