package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/agents/anomaly"
	"github.com/cosmic-horizons/horizons/agents/fits"
	"github.com/cosmic-horizons/horizons/agents/pipeline"
	"github.com/cosmic-horizons/horizons/agents/synth"
)

// small is the field the tests run: 128² pixels, 18 antennas, 48
// integrations × 32 channels (about 235 000 visibilities per epoch).
func small() *pipeline.Config {
	return &pipeline.Config{ImageSize: 128, Antennas: 18}
}

func near(a anomaly.Anomaly, s synth.TruthSource, r float64) bool {
	return anomaly.SeparationArcsec(anomaly.Coord{RA: a.RA, Dec: a.Dec}, anomaly.Coord{RA: s.RA, Dec: s.Dec}) <= r
}

// End to end on a small field, scored against the truth, for several
// seeds: every source recovered with its flux, the transient reported as a
// new source, the variable as a variable, no steady source reported, the
// RFI found and the image noise near the theoretical value.
func TestEndToEndTruth(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		res, err := pipeline.Run(context.Background(), seed, small())
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		s := res.Summary
		t.Logf("seed %d: %s", seed, res.OneLine())
		if s.TruthSources != 8 || s.SourcesMatched != s.TruthSources {
			t.Errorf("seed %d: matched %d of %d truth sources", seed, s.SourcesMatched, s.TruthSources)
		}
		if s.Reliability < 0.99 {
			t.Errorf("seed %d: reliability %.3f < 0.99 (%d found)", seed, s.Reliability, s.SourcesFound)
		}
		if math.Abs(s.FluxRatio-1) > 0.05 {
			t.Errorf("seed %d: median flux ratio %.3f not within 1 ± 0.05", seed, s.FluxRatio)
		}
		for e := 0; e < 2; e++ {
			if s.FlagRecall[e] < 0.95 || s.FlagFPR[e] > 0.03 {
				t.Errorf("seed %d epoch %d: flag recall %.3f (want >= 0.95), FPR %.4f (want <= 0.03)", seed, e+1, s.FlagRecall[e], s.FlagFPR[e])
			}
			if s.RMSJy[e] > 1.3*s.TheoreticalJy[e] {
				t.Errorf("seed %d epoch %d: rms %.3g > 1.3 × theoretical %.3g", seed, e+1, s.RMSJy[e], s.TheoreticalJy[e])
			}
		}
		radius := res.Beam.MajorArcsec
		var transient, variable bool
		for _, a := range res.Comparison.Anomalies {
			for _, tr := range res.Truth {
				if !near(a, tr, radius) {
					continue
				}
				switch {
				case tr.Kind == synth.KindTransient && a.Type == anomaly.NewSource:
					transient = true
				case tr.Kind == synth.KindVariable && a.Type == anomaly.Variable:
					variable = true
				case tr.Kind == synth.KindSteady:
					t.Errorf("seed %d: steady source %d (SNR %.0f) reported as %s: %s", seed, tr.ID, tr.SNR1, a.Type, a.Description)
				}
			}
		}
		if !transient || !s.TransientFound {
			t.Errorf("seed %d: injected transient (SNR %.0f) not reported as a new source; anomalies %+v", seed, res.Config.TransientSNR, s.AnomalyTypes)
		}
		if !variable || !s.VariableFound {
			t.Errorf("seed %d: variable (factor %.1f) not reported; anomalies %+v", seed, res.Config.VariableFactor, s.AnomalyTypes)
		}
	}
}

// Applying the flags matters: without flagging the RFI raises the image
// noise well above the flagged run's on the same data.
func TestFlagsImproveImage(t *testing.T) {
	run := func(flagger string) pipeline.Summary {
		c := small()
		c.Flagger = flagger
		c.Deconvolver = "hogbom"
		res, err := pipeline.Run(context.Background(), 7, c)
		if err != nil {
			t.Fatal(err)
		}
		return res.Summary
	}
	flagged, raw := run(pipeline.FlaggerSumThreshold), run(pipeline.FlaggerNone)
	if raw.FlagFraction[1] != 0 || flagged.FlagFraction[1] == 0 {
		t.Fatalf("flag fractions: none %.3f, sumthreshold %.3f", raw.FlagFraction[1], flagged.FlagFraction[1])
	}
	if !(raw.RMSJy[1] > 1.5*flagged.RMSJy[1]) {
		t.Errorf("rms without flags %.3g, with flags %.3g: want the RFI to raise it by > 1.5×", raw.RMSJy[1], flagged.RMSJy[1])
	}
}

func TestDeterministic(t *testing.T) {
	a, err := pipeline.Run(context.Background(), 11, small())
	if err != nil {
		t.Fatal(err)
	}
	b, err := pipeline.Run(context.Background(), 11, small())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Documents[pipeline.FileCatalogue], b.Documents[pipeline.FileCatalogue]) {
		t.Error("the same seed gave different catalogues")
	}
	c, err := pipeline.Run(context.Background(), 12, small())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Documents[pipeline.FileCatalogue], c.Documents[pipeline.FileCatalogue]) {
		t.Error("different seeds gave the same catalogue")
	}
}

// Every product written to the output directory reads back: FITS through
// agents/fits with the in-memory pixels, beam and WCS, PNGs through
// image/png, JSON documents through encoding/json.
func TestOutputsReadBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	c := small()
	c.OutputDir = dir
	res, err := pipeline.Run(context.Background(), 5, c)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{pipeline.FileAnomalies, pipeline.FileCatalogue, pipeline.FileDiff, pipeline.FileDiffPNG, pipeline.FileFlagsPNG,
		pipeline.FilePSF, pipeline.FileReference, pipeline.FileResidual, pipeline.FileRestored, pipeline.FileRestoredPNG, pipeline.FileSummary}
	if strings.Join(res.Artifacts, ",") != strings.Join(want, ",") {
		t.Fatalf("artifacts %v, want %v", res.Artifacts, want)
	}
	for _, name := range []string{pipeline.FileRestored, pipeline.FileResidual, pipeline.FilePSF, pipeline.FileReference, pipeline.FileDiff} {
		im, err := fits.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		mem := res.Images[name]
		if im.Width != 128 || im.Height != 128 || len(im.Data) != len(mem.Data) {
			t.Fatalf("%s: %d×%d with %d pixels", name, im.Width, im.Height, len(im.Data))
		}
		for i := range im.Data {
			if im.Data[i] != mem.Data[i] {
				t.Fatalf("%s: pixel %d reads %v, wrote %v", name, i, im.Data[i], mem.Data[i])
			}
		}
		if math.Abs(im.BMaj*3600-res.Beam.MajorArcsec) > 1e-6 || im.WCS.Projection != "SIN" || math.Abs(im.WCS.DeltaY*3600-1) > 1e-9 {
			t.Errorf("%s: BMAJ %v″, projection %q, CDELT2 %v", name, im.BMaj*3600, im.WCS.Projection, im.WCS.DeltaY)
		}
	}
	psf, _ := fits.ReadFile(filepath.Join(dir, pipeline.FilePSF))
	if p := psf.Data[64*128+64]; math.Abs(float64(p)-1) > 1e-6 {
		t.Errorf("PSF centre = %v, want 1", p)
	}
	for _, name := range []string{pipeline.FileRestoredPNG, pipeline.FileDiffPNG, pipeline.FileFlagsPNG} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if img.Bounds().Dx() == 0 {
			t.Errorf("%s is empty", name)
		}
	}
	var cat pipeline.CatalogueDoc
	readJSON(t, filepath.Join(dir, pipeline.FileCatalogue), &cat)
	if len(cat.Components) != res.Summary.SourcesFound || len(cat.Components) == 0 {
		t.Errorf("catalogue has %d components, summary says %d", len(cat.Components), res.Summary.SourcesFound)
	}
	var an pipeline.AnomaliesDoc
	readJSON(t, filepath.Join(dir, pipeline.FileAnomalies), &an)
	if len(an.Anomalies) != res.Summary.Anomalies {
		t.Errorf("anomalies.json has %d, summary says %d", len(an.Anomalies), res.Summary.Anomalies)
	}
	var sum pipeline.Summary
	readJSON(t, filepath.Join(dir, pipeline.FileSummary), &sum)
	if len(sum.Timings) != len(pipeline.Stages) || sum.TotalSeconds <= 0 || !sum.TransientFound {
		t.Errorf("summary.json: %d stage timings, total %v s, transient found %v", len(sum.Timings), sum.TotalSeconds, sum.TransientFound)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// Without an output directory nothing is written and every product is in
// memory.
func TestInMemory(t *testing.T) {
	wd, _ := os.Getwd()
	before, _ := os.ReadDir(wd)
	res, err := pipeline.Run(context.Background(), 5, small())
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadDir(wd)
	if len(res.Artifacts) != 0 || len(after) != len(before) {
		t.Errorf("artifacts %v; directory had %d entries, now %d", res.Artifacts, len(before), len(after))
	}
	if len(res.Images) != 5 || len(res.PNGs) != 3 || len(res.Documents) != 3 {
		t.Errorf("in memory: %d images, %d PNGs, %d documents", len(res.Images), len(res.PNGs), len(res.Documents))
	}
}

type rec struct {
	mu    sync.Mutex
	pct   []float64
	notes []string
}

func (r *rec) progress(p float64, note string) {
	r.mu.Lock()
	r.pct = append(r.pct, p)
	r.notes = append(r.notes, note)
	r.mu.Unlock()
}

// Progress is monotonic, ends at 100, and reports every stage started and
// completed in order at its weighted percentage.
func TestProgress(t *testing.T) {
	r := &rec{}
	c := small()
	c.Progress = r.progress
	if _, err := pipeline.Run(context.Background(), 3, c); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(r.pct); i++ {
		if r.pct[i] < r.pct[i-1] {
			t.Fatalf("progress fell from %v to %v at %q", r.pct[i-1], r.pct[i], r.notes[i])
		}
	}
	if r.pct[len(r.pct)-1] != 100 {
		t.Errorf("last progress %v, want 100", r.pct[len(r.pct)-1])
	}
	var stages, want []string
	for _, s := range pipeline.Stages {
		want = append(want, s.Name+" started", s.Name+" completed")
	}
	for _, n := range r.notes {
		name, status, ok := agents.ParseStage(n)
		if !ok {
			t.Fatalf("note %q is not a stage note", n)
		}
		if k := name + " " + status; len(stages) == 0 || stages[len(stages)-1] != k {
			stages = append(stages, k)
		}
	}
	if strings.Join(stages, ",") != strings.Join(want, ",") {
		t.Errorf("stage notes %v, want %v", stages, want)
	}
	// The imaging stage starts at the cumulative weight of the stages before it.
	for i, n := range r.notes {
		if n == agents.StageNote(pipeline.StageImaging, agents.StageStarted) && r.pct[i] != 25 {
			t.Errorf("imaging started at %v%%, want 25%%", r.pct[i])
		}
	}
}

// Cancelling the context in the middle of the imaging stage stops the run
// with the context's error and no later stage starts.
func TestCancelMidStage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &rec{}
	c := small()
	c.Progress = func(p float64, note string) {
		r.progress(p, note)
		if strings.HasPrefix(note, "stage imaging started: epoch 1") {
			cancel()
		}
	}
	res, err := pipeline.Run(ctx, 3, c)
	if !errors.Is(err, context.Canceled) || res != nil {
		t.Fatalf("Run after cancel = %v, %v; want context.Canceled", res, err)
	}
	for _, n := range r.notes {
		if strings.Contains(n, "anomaly") || strings.Contains(n, "outputs") || strings.Contains(n, "epoch 2: gridding") {
			t.Errorf("note %q after cancellation", n)
		}
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		field string
		cfg   pipeline.Config
	}{
		{"ImageSize", pipeline.Config{ImageSize: 63}},
		{"ImageSize", pipeline.Config{ImageSize: -2}},
		{"CellArcsec", pipeline.Config{CellArcsec: math.NaN()}},
		{"CellArcsec", pipeline.Config{CellArcsec: -1}},
		{"Antennas", pipeline.Config{Antennas: 1}},
		{"Times", pipeline.Config{Times: 4}},
		{"Channels", pipeline.Config{Channels: 5000}},
		{"NoiseJy", pipeline.Config{NoiseJy: math.Inf(1)}},
		{"Sources", pipeline.Config{Sources: -3}},
		{"MaxSNR", pipeline.Config{MinSNR: 50, MaxSNR: 10}},
		{"Flagger", pipeline.Config{Flagger: "aoflagger"}},
		{"Deconvolver", pipeline.Config{Deconvolver: "mem"}},
		{"Niter", pipeline.Config{Niter: -1}},
		{"Sources", pipeline.Config{ImageSize: 64, Sources: 200}},
		{"RFI", pipeline.Config{Times: 8, RFI: &synth.RFIConfig{Broadband: 5}}},
	} {
		_, err := pipeline.Run(context.Background(), 1, &tc.cfg)
		if !errors.Is(err, pipeline.ErrConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: error %v, want ErrConfig naming %s", tc.cfg, err, tc.field)
		}
	}
}
