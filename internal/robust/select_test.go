package robust

import (
	"math/rand/v2"
	"sort"
	"testing"
)

func TestSelectMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 200; trial++ {
		n := 1 + r.IntN(60)
		a := make([]float64, n)
		for i := range a {
			a[i] = float64(r.IntN(10)) // many ties
		}
		sorted := append([]float64(nil), a...)
		sort.Float64s(sorted)
		k := r.IntN(n)
		if got := Select(a, k); got != sorted[k] {
			t.Fatalf("Select(k=%d) = %v, want %v", k, got, sorted[k])
		}
		for i := 0; i < k; i++ {
			if a[i] > a[k] {
				t.Fatalf("a[%d]=%v > a[k]=%v after Select", i, a[i], a[k])
			}
		}
		for i := k + 1; i < n; i++ {
			if a[i] < a[k] {
				t.Fatalf("a[%d]=%v < a[k]=%v after Select", i, a[i], a[k])
			}
		}
	}
}
