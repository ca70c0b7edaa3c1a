package alphacal

import (
	"encoding/json"
	"math"
	"strconv"
)

// Scores compares a flag mask with the truth, per sample.
type Scores struct {
	TP int `json:"tp"`
	FP int `json:"fp"`
	TN int `json:"tn"`
	FN int `json:"fn"`
	// Recall is TP/(TP+FN), the true-positive rate (NaN with no RFI).
	Recall float64 `json:"recall"`
	// FPR is FP/(FP+TN), the false-positive rate (NaN with no clean
	// samples).
	FPR float64 `json:"fpr"`
	// Precision is TP/(TP+FP) (NaN with no flags).
	Precision float64 `json:"precision"`
	// F1 is the harmonic mean of precision and recall.
	F1 float64 `json:"f1"`
	// MCC is the Matthews correlation coefficient (0 when undefined).
	MCC float64 `json:"mcc"`
}

// Score compares pred with truth (same length, non-empty).
func Score(pred, truth []bool) (Scores, error) {
	if len(pred) == 0 {
		return Scores{}, invalid("pred", "[]", "must not be empty")
	}
	if len(pred) != len(truth) {
		return Scores{}, invalid("truth length", len(truth), "must equal the prediction length "+strconv.Itoa(len(pred)))
	}
	var s Scores
	for i, p := range pred {
		switch {
		case p && truth[i]:
			s.TP++
		case p:
			s.FP++
		case truth[i]:
			s.FN++
		default:
			s.TN++
		}
	}
	ratio := func(a, b int) float64 {
		if b == 0 {
			return math.NaN()
		}
		return float64(a) / float64(b)
	}
	s.Recall = ratio(s.TP, s.TP+s.FN)
	s.FPR = ratio(s.FP, s.FP+s.TN)
	s.Precision = ratio(s.TP, s.TP+s.FP)
	s.F1 = ratio(2*s.TP, 2*s.TP+s.FP+s.FN)
	tp, fp, tn, fn := float64(s.TP), float64(s.FP), float64(s.TN), float64(s.FN)
	if d := math.Sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)); d > 0 {
		s.MCC = (tp*tn - fp*fn) / d
	}
	return s, nil
}

// RecallOn returns the fraction of the samples marked in truth that pred
// flags (NaN when truth marks none).
func RecallOn(pred, truth []bool) float64 {
	n, hit := 0, 0
	for i, t := range truth {
		if t {
			n++
			if i < len(pred) && pred[i] {
				hit++
			}
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return float64(hit) / float64(n)
}

// MarshalJSON encodes undefined ratios (NaN) as null.
func (s Scores) MarshalJSON() ([]byte, error) {
	f := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	return json.Marshal(struct {
		TP        int      `json:"tp"`
		FP        int      `json:"fp"`
		TN        int      `json:"tn"`
		FN        int      `json:"fn"`
		Recall    *float64 `json:"recall"`
		FPR       *float64 `json:"fpr"`
		Precision *float64 `json:"precision"`
		F1        *float64 `json:"f1"`
		MCC       float64  `json:"mcc"`
	}{s.TP, s.FP, s.TN, s.FN, f(s.Recall), f(s.FPR), f(s.Precision), f(s.F1), s.MCC})
}
