package anomaly

import (
	"context"
	"testing"

	"github.com/cosmic-horizons/horizons/agents/synth"
)

// TestCompareQuality scores two-epoch comparison on eight seeded epoch
// pairs (150 sources, 20 transients, 10 disappeared, 15 variables and 3
// glitches each).
func TestCompareQuality(t *testing.T) {
	ctx := context.Background()
	type tally struct{ hit, n int }
	rec := map[synth.TruthKind]*tally{synth.KindTransient: {}, synth.KindDisappeared: {}, synth.KindVariable: {}, synth.KindGlitch: {}}
	want := map[synth.TruthKind]Type{synth.KindTransient: NewSource, synth.KindDisappeared: Disappeared, synth.KindVariable: Variable, synth.KindGlitch: Artefact}
	steadyVariable, steadyAny, spurious, total := 0, 0, 0, 0
	const pairs = 8
	for seed := int64(1); seed <= pairs; seed++ {
		p, err := synth.NewEpochPair(&synth.PairConfig{Transients: 20, Disappeared: 10, Variables: 15, Glitches: 3}, seed)
		if err != nil {
			t.Fatal(err)
		}
		cmp, err := Compare(ctx, FromSynth(p.Epoch1), FromSynth(p.Epoch2), nil)
		if err != nil {
			t.Fatal(err)
		}
		radius := p.Config.Image.Beam.MajArcsec
		total += len(cmp.Anomalies)
		for _, s := range p.Sources {
			var found []Anomaly
			for _, a := range cmp.Anomalies {
				if SeparationArcsec(Coord{s.RA, s.Dec}, Coord{a.RA, a.Dec}) <= radius {
					found = append(found, a)
				}
			}
			if s.Kind == synth.KindSteady {
				for _, a := range found {
					steadyAny++
					if a.Type == Variable {
						steadyVariable++
						t.Errorf("seed %d: steady source (SNR %.1f) flagged variable: %s", seed, s.SNR1, a.Description)
					}
				}
				continue
			}
			// Glitches always count; sky changes from difference SNR 8.
			if s.Kind != synth.KindGlitch && s.DiffSNR() < 8 {
				continue
			}
			tl := rec[s.Kind]
			tl.n++
			for _, a := range found {
				if a.Type == want[s.Kind] {
					tl.hit++
					break
				}
			}
		}
		for _, a := range cmp.Anomalies {
			near := false
			for _, s := range p.Sources {
				if SeparationArcsec(Coord{s.RA, s.Dec}, Coord{a.RA, a.Dec}) <= radius {
					near = true
				}
			}
			if !near {
				spurious++
				t.Logf("seed %d: anomaly with no truth nearby: %s", seed, a.Description)
			}
			if a.Description == "" || a.Name == "" || a.Severity == "" {
				t.Errorf("anomaly %d lacks a description, name or severity: %+v", a.ID, a)
			}
		}
	}
	for k, tl := range rec {
		t.Logf("%-11s recovered %d/%d (difference SNR >= 8) as %s", k, tl.hit, tl.n, want[k])
	}
	t.Logf("%d anomalies in %d pairs; %d with no truth nearby; %d on steady sources (%d variable)", total, pairs, spurious, steadyAny, steadyVariable)
	for _, k := range []synth.TruthKind{synth.KindTransient, synth.KindDisappeared} {
		tl := rec[k]
		if tl.n < 40 || float64(tl.hit) < 0.95*float64(tl.n) {
			t.Errorf("%s: recovered %d/%d, want >= 95%% of at least 40", k, tl.hit, tl.n)
		}
	}
	if tl := rec[synth.KindVariable]; tl.n < 40 || float64(tl.hit) < 0.9*float64(tl.n) {
		t.Errorf("variables: recovered %d/%d, want >= 90%% of at least 40", tl.hit, tl.n)
	}
	if tl := rec[synth.KindGlitch]; tl.hit != tl.n {
		t.Errorf("glitches: %d/%d reported as artefacts, want all", tl.hit, tl.n)
	}
	if spurious > pairs/2 {
		t.Errorf("%d anomalies with no truth nearby in %d pairs, want <= %d", spurious, pairs, pairs/2)
	}
}

// TestCompareIdenticalSky: two epochs with only steady sources and
// independent noise give no variable, new or disappeared source above 8σ.
func TestCompareSteadySky(t *testing.T) {
	p, err := synth.NewEpochPair(&synth.PairConfig{Transients: -1, Disappeared: -1, Variables: -1, Glitches: -1}, 42)
	if err != nil {
		t.Fatal(err)
	}
	cmp, err := Compare(context.Background(), FromSynth(p.Epoch1), FromSynth(p.Epoch2), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cmp.Matched < 80 {
		t.Errorf("matched %d sources, want >= 80 of the 150 steady ones", cmp.Matched)
	}
	for _, a := range cmp.Anomalies {
		if a.Type == Variable || a.Significance >= 8 {
			t.Errorf("steady sky produced %s", a.Description)
		}
	}
}
