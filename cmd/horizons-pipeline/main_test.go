package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cosmic-horizons/horizons/agents/fits"
)

func TestCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "field")
	var out, errb bytes.Buffer
	if err := run([]string{"-out", dir, "-seed", "3", "-size", "128"}, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	for _, want := range []string{"stage timings", "imaging", "transient found: true", "8 of 8 truth matched", "new_source"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errb.String(), "stage imaging completed") {
		t.Errorf("progress lacks stage notes:\n%s", errb.String())
	}
	if im, err := fits.ReadFile(filepath.Join(dir, "restored.fits")); err != nil || im.Width != 128 {
		t.Fatalf("restored.fits: %v", err)
	}
	out.Reset()
	if err := run([]string{"-json", "-q", "-seed", "3", "-size", "128"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	var sum map[string]any
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil || sum["transient_found"] != true {
		t.Fatalf("-json printed %s: %v", out.String(), err)
	}
	if _, err := os.Stat(filepath.Join(dir, "summary.json")); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run([]string{"-bench", "1", "-size", "64", "-antennas", "6", "-times", "16", "-channels", "16", "-sources", "2"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 core (s)", "imaging", "total", "×"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-bench output lacks %q:\n%s", want, out.String())
		}
	}
	for _, bad := range [][]string{{"-size", "63"}, {"-flagger", "x"}, {"extra"}, {"-nope"}} {
		if err := run(bad, &out, &errb); err == nil {
			t.Errorf("run(%q) succeeded", bad)
		}
	}
	if err := run([]string{"-size", "63"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "ImageSize = 63") {
		t.Errorf("bad size error: %v", err)
	}
}
