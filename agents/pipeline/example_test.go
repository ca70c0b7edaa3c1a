package pipeline_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/agents/pipeline"
)

// Run the whole pipeline on a small synthetic field, in memory, and print
// the stage changes and the score against the truth.
func ExampleRun() {
	res, err := pipeline.Run(context.Background(), 42, &pipeline.Config{
		ImageSize: 128,
		Progress: func(pct float64, note string) {
			if _, status, _ := agents.ParseStage(note); status == agents.StageCompleted {
				fmt.Printf("%3.0f%% %s\n", pct, note)
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	s := res.Summary
	fmt.Printf("sources matched: %d of %d\n", s.SourcesMatched, s.TruthSources)
	fmt.Printf("transient found: %v, variable found: %v\n", s.TransientFound, s.VariableFound)
	fmt.Println("products:", strings.Join([]string{pipeline.FileRestored, pipeline.FileCatalogue, pipeline.FileAnomalies}, ", "), len(res.Images), "images in memory")
	// Output:
	//  10% stage synthesis completed
	//  25% stage alphacal completed
	//  75% stage imaging completed
	//  95% stage anomaly completed
	// 100% stage outputs completed
	// sources matched: 8 of 8
	// transient found: true, variable found: true
	// products: restored.fits, catalogue.json, anomalies.json 5 images in memory
}
