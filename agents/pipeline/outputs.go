package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/cosmic-horizons/horizons/agents/alphacal"
	"github.com/cosmic-horizons/horizons/agents/anomaly"
	"github.com/cosmic-horizons/horizons/agents/fits"
	"github.com/cosmic-horizons/horizons/agents/imaging"
)

// Product file names (in Result.Images, Result.PNGs and Result.Documents,
// and in Config.OutputDir when it is set).
const (
	FileRestored  = "restored.fits"
	FileResidual  = "residual.fits"
	FilePSF       = "psf.fits"
	FileReference = "reference.restored.fits"
	FileDiff      = "difference.fits"

	FileRestoredPNG = "restored.png"
	FileDiffPNG     = "difference.png"
	FileFlagsPNG    = "flags.png"

	FileCatalogue = "catalogue.json"
	FileAnomalies = "anomalies.json"
	FileSummary   = "summary.json"
)

// CatalogueDoc is the catalogue JSON document: the components found in
// epoch 2 with the beam and median rms.
type CatalogueDoc struct {
	Epoch      int                 `json:"epoch"`
	Beam       anomaly.Beam        `json:"beam"`
	MedianRMS  float64             `json:"median_rms_jy_beam"`
	Components []anomaly.Component `json:"components"`
}

// AnomaliesDoc is the anomalies JSON document.
type AnomaliesDoc struct {
	Matched   int               `json:"matched"`
	Anomalies []anomaly.Anomaly `json:"anomalies"`
}

func outputs(res *Result, pr *progressor) error {
	c := res.Config
	v := res.Epoch2.Vis.Config
	r1, r2 := res.Epoch1.Imaging, res.Epoch2.Imaging
	diff := imaging.NewImage(r2.Restored.N, r2.Restored.CellArcsec)
	for i := range diff.Pix {
		diff.Pix[i] = r2.Restored.Pix[i] - r1.Restored.Pix[i]
	}
	fitsOf := func(im *imaging.Image, unit, object string) *fits.Image {
		f := imaging.ToFITS(im, res.Beam, v.RADeg, v.DecDeg, v.RefFreqHz, unit)
		f.Object = object
		return f
	}
	res.Images[FileRestored] = fitsOf(r2.Restored, "Jy/beam", "epoch 2 restored")
	res.Images[FileResidual] = fitsOf(r2.Residual, "Jy/beam", "epoch 2 residual")
	res.Images[FilePSF] = fitsOf(r2.PSF, "", "epoch 2 PSF")
	res.Images[FileReference] = fitsOf(r1.Restored, "Jy/beam", "epoch 1 restored")
	res.Images[FileDiff] = fitsOf(diff, "Jy/beam", "epoch 2 - epoch 1")
	pr.detail(0.3, "PNG previews")
	for name, src := range map[string]string{FileRestoredPNG: FileRestored, FileDiffPNG: FileDiff} {
		f := res.Images[src]
		var b bytes.Buffer
		if err := fits.WritePNG(&b, f.Data, f.Width, f.Height, &fits.PNGConfig{Asinh: true}); err != nil {
			return err
		}
		res.PNGs[name] = b.Bytes()
	}
	fr := res.Epoch2.Flags
	var b bytes.Buffer
	if err := alphacal.WriteMaskPNG(&b, fr.Residual, math.Max(fr.Sigma, 1e-12)*math.Sqrt(2-math.Pi/2), fr.Mask, res.Epoch2.Spectrum.Truth); err != nil {
		return err
	}
	res.PNGs[FileFlagsPNG] = b.Bytes()

	cmp := res.Comparison
	docs := map[string]any{
		FileCatalogue: CatalogueDoc{Epoch: 2, Beam: cmp.Epoch2.Beam, MedianRMS: cmp.Epoch2.MedianRMS, Components: nonNil(cmp.Epoch2.Components)},
		FileAnomalies: AnomaliesDoc{Matched: cmp.Matched, Anomalies: nonNil(cmp.Anomalies)},
	}
	for name, d := range docs {
		j, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			return fmt.Errorf("encode %s: %w", name, err)
		}
		res.Documents[name] = j
	}
	if c.OutputDir == "" {
		return nil
	}
	pr.detail(0.6, "writing "+c.OutputDir)
	return res.write()
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// finishSummary encodes the summary (after every stage is timed) and
// writes it into Config.OutputDir when that is set.
func (res *Result) finishSummary() error {
	j, err := json.MarshalIndent(res.Summary, "", "  ")
	if err != nil {
		return fmt.Errorf("pipeline: encode %s: %w", FileSummary, err)
	}
	res.Documents[FileSummary] = j
	if dir := res.Config.OutputDir; dir != "" {
		if err := os.WriteFile(filepath.Join(dir, FileSummary), j, 0o644); err != nil {
			return fmt.Errorf("pipeline: write %s: %w", FileSummary, err)
		}
		res.Artifacts = append(res.Artifacts, FileSummary)
		sort.Strings(res.Artifacts)
	}
	return nil
}

// write puts every product into Config.OutputDir.
func (res *Result) write() error {
	dir := res.Config.OutputDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	var names []string
	for name, im := range res.Images {
		if err := fits.WriteFile(filepath.Join(dir, name), im); err != nil {
			return err
		}
		names = append(names, name)
	}
	for _, m := range []map[string][]byte{res.PNGs, res.Documents} {
		for name, b := range m {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
			names = append(names, name)
		}
	}
	sort.Strings(names)
	res.Artifacts = names
	return nil
}
