package workflow

import "github.com/cosmic-horizons/horizons/agents"

// VLASSPipeline is the name of the built-in calibration → imaging →
// anomaly detection workflow.
const VLASSPipeline = "vlass-pipeline"

// Builtins returns the workflows an engine publishes at start-up when they
// are absent: today the VLASS pipeline.
//
// vlass-pipeline takes one input, dataset_id. AlphaCal flags and calibrates
// it and passes on the calibrated dataset; ImageReconstruction images that
// dataset and passes on the image; AnomalyDetection searches the image.
// Each output is read from the job result's dataset_id field.
func Builtins() []Definition {
	return []Definition{{
		Name:          VLASSPipeline,
		Description:   "VLASS quick-look pipeline: RFI flagging and calibration (AlphaCal), image reconstruction, anomaly detection",
		FailurePolicy: FailFast,
		Inputs:        map[string]string{"dataset_id": ""},
		Steps: []Step{
			{
				Name: "calibrate", Agent: agents.NameAlphaCal, DatasetID: "${inputs.dataset_id}", GPUs: 1,
				Outputs: map[string]string{"calibrated": "dataset_id"},
			},
			{
				Name: "image", Agent: agents.NameImageReconstruction, DatasetID: "${steps.calibrate.outputs.calibrated}", GPUs: 1,
				DependsOn: []string{"calibrate"},
				Outputs:   map[string]string{"image": "dataset_id"},
			},
			{
				Name: "detect", Agent: agents.NameAnomalyDetection, DatasetID: "${steps.image.outputs.image}", GPUs: 1,
				DependsOn: []string{"image"},
				Outputs:   map[string]string{"catalogue": "dataset_id"},
			},
		},
	}}
}
