package events_test

import (
	"testing"

	"github.com/cosmic-horizons/horizons/events"
)

func BenchmarkValidate(b *testing.B) {
	e := newEvent(b, events.JobRunning, "job-1", "RUNNING", 3)
	cat := events.DefaultCatalogue()
	b.ReportAllocs()
	for b.Loop() {
		if err := cat.Validate(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSONCodecMarshal(b *testing.B) {
	e := newEvent(b, events.JobRunning, "job-1", "RUNNING", 3)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (events.JSONCodec{}).Marshal(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSONCodecUnmarshal(b *testing.B) {
	e := newEvent(b, events.JobRunning, "job-1", "RUNNING", 3)
	m, _ := events.JSONCodec{}.Marshal(e)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (events.JSONCodec{}).Unmarshal(m); err != nil {
			b.Fatal(err)
		}
	}
}
