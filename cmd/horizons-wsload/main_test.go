package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestCheckCountsLossDuplicatesDisorder(t *testing.T) {
	want := map[string]bool{"a": true, "b": true, "c": true, "d": true}
	c := &conn{got: []arrival{
		{id: "a", subject: "j1", seq: 1},
		{id: "c", subject: "j1", seq: 3},
		{id: "b", subject: "j1", seq: 2}, // out of order
		{id: "c", subject: "j1", seq: 3}, // duplicate
		{id: "x", subject: "j2", seq: 1}, // another job: not wanted, not an error
	}}
	lost, dups, disorder := c.check(want)
	if lost != 1 || dups != 1 || disorder != 1 {
		t.Fatalf("lost %d dups %d disorder %d, want 1 1 1", lost, dups, disorder)
	}
	ok := &conn{got: []arrival{{id: "a", subject: "j1", seq: 1}, {id: "b", subject: "j1", seq: 2}, {id: "c", subject: "j1", seq: 3}, {id: "d", subject: "j2", seq: 1}}}
	if l, d, o := ok.check(want); l+d+o != 0 {
		t.Fatalf("a complete stream: lost %d dups %d disorder %d", l, d, o)
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if p := pct(ds, 50); p != 50*time.Millisecond {
		t.Errorf("p50 %v", p)
	}
	if p := pct(ds, 99); p != 99*time.Millisecond {
		t.Errorf("p99 %v", p)
	}
	if p := pct(ds, 100); p != 100*time.Millisecond {
		t.Errorf("max %v", p)
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("pct sorted its input in place")
	}
	if pct(nil, 50) != 0 {
		t.Error("empty")
	}
}

func TestParseFlags(t *testing.T) {
	env := func(k string) string { return map[string]string{"HORIZONS_ADMIN_TOKEN": "tok"}[k] }
	c, err := parseFlags([]string{"-conns", "10", "-url", "http://h:1/"}, env, io.Discard)
	if err != nil || c.Token != "tok" || c.Conns != 10 || c.URL != "http://h:1" {
		t.Fatalf("%+v %v", c, err)
	}
	for _, args := range [][]string{{"-conns", "0"}, {"-slow", "2"}, {"-url", "h:1"}, {"-jobs", "0"}, {"-reconnect", "-1"}} {
		if _, err := parseFlags(args, env, io.Discard); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: %v", args, err)
		}
	}
	if _, err := parseFlags(nil, func(string) string { return "" }, io.Discard); err == nil || !strings.Contains(err.Error(), "-token") {
		t.Errorf("no token: %v", err)
	}
}

func TestPrintBaselineRatios(t *testing.T) {
	r := &report{Conns: 10, Events: 3, Latency: []time.Duration{40 * time.Millisecond}, Spread: []time.Duration{10 * time.Millisecond}}
	b := &baselineResult{Latency: []time.Duration{10 * time.Millisecond}, Spread: []time.Duration{5 * time.Millisecond}}
	var out strings.Builder
	printBaseline(&out, r, b, time.Second)
	flat := strings.Join(strings.Fields(out.String()), " ")
	for _, want := range []string{"delivery latency p50 40.0 ms 10.0 ms 4.00x", "fan-out spread p50 10.0 ms 5.0 ms 2.00x"} {
		if !strings.Contains(flat, want) {
			t.Errorf("missing %q in\n%s", want, out.String())
		}
	}
}
