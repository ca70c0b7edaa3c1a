package anomaly

import "github.com/cosmic-horizons/horizons/agents/synth"

// FromSynth wraps a synthetic image (sharing its pixels).
func FromSynth(im *synth.Image) *Image {
	return &Image{
		Width: im.Width, Height: im.Height, Pix: im.Pix,
		WCS:  WCS(im.WCS),
		Beam: Beam(im.Beam),
	}
}

// References converts synthetic truth into scoring references for one
// epoch (1 or 2), keeping the entries present in that epoch whose kinds
// are listed (all sky kinds when none are).
func References(truth []synth.TruthSource, epoch int, kinds ...synth.TruthKind) []Reference {
	var out []Reference
	for _, s := range truth {
		if len(kinds) > 0 {
			keep := false
			for _, k := range kinds {
				keep = keep || s.Kind == k
			}
			if !keep {
				continue
			}
		} else if s.Kind == synth.KindGlitch {
			continue
		}
		flux, snr := s.Flux1, s.SNR1
		if epoch == 2 {
			flux, snr = s.Flux2, s.SNR2
		}
		if flux == 0 {
			continue
		}
		out = append(out, Reference{Coord: Coord{s.RA, s.Dec}, Flux: flux, SNR: snr})
	}
	return out
}
