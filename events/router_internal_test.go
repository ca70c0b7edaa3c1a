package events

import (
	"testing"
	"time"
)

func TestJitterBoundsAndCap(t *testing.T) {
	c, err := RouterConfig{Jitter: 0.2, MaxInterval: 11 * time.Second}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		d    time.Duration
		u    float64
		want time.Duration
	}{
		{10 * time.Second, 0, 8 * time.Second},       // -20 %
		{10 * time.Second, 0.5, 10 * time.Second},    // the nominal value
		{10 * time.Second, 0.75, 11 * time.Second},   // +10 %, at the cap
		{10 * time.Second, 0.9999, 11 * time.Second}, // +20 % would pass the cap
		{5 * time.Second, 0.75, 5500 * time.Millisecond},
	}
	for _, tc := range cases {
		if got := c.jittered(tc.d, tc.u); got != tc.want {
			t.Errorf("jittered(%v, %v) = %v, want %v", tc.d, tc.u, got, tc.want)
		}
	}
	none, _ := RouterConfig{Jitter: -1}.withDefaults()
	if got := none.jittered(3*time.Second, 0); got != 3*time.Second {
		t.Errorf("no jitter: %v", got)
	}
}
