package analytics

import (
	"context"
	"math"
	"sort"
	"sync"
	"time"
)

type seriesKey struct {
	metric string
	labels Labels
}

// Memory is the in-memory Driver: per resolution and series a slice of
// samples sorted by time. It is the embedded default for tests and
// examples; it keeps nothing across restarts. It is safe for concurrent
// use.
type Memory struct {
	mu     sync.RWMutex
	series [3]map[seriesKey][]Bucket
	alerts map[string][]byte // alert id -> JSON
	rules  map[string]RuleState
}

// NewMemory returns an empty Memory driver.
func NewMemory() *Memory {
	m := &Memory{}
	for i := range m.series {
		m.series[i] = map[seriesKey][]Bucket{}
	}
	return m
}

// Write implements Driver.
func (m *Memory) Write(ctx context.Context, raw []Point, rollups map[Resolution][]Bucket) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range raw {
		k := seriesKey{p.Metric, p.Labels}
		bs := m.series[Raw][k]
		b := Bucket{Metric: p.Metric, Labels: p.Labels, Start: p.Time, Count: 1, Sum: p.Value, Min: p.Value, Max: p.Value}
		if n := len(bs); n == 0 || !p.Time.Before(bs[n-1].Start) {
			bs = append(bs, b)
		} else {
			i := sort.Search(n, func(i int) bool { return bs[i].Start.After(p.Time) })
			bs = append(bs, Bucket{})
			copy(bs[i+1:], bs[i:])
			bs[i] = b
		}
		m.series[Raw][k] = bs
	}
	for r, list := range rollups {
		if r != Minute && r != Hour {
			continue
		}
		for _, b := range list {
			k := seriesKey{b.Metric, b.Labels}
			bs := m.series[r][k]
			n := len(bs)
			i := sort.Search(n, func(i int) bool { return !bs[i].Start.Before(b.Start) })
			switch {
			case i < n && bs[i].Start.Equal(b.Start):
				x := &bs[i]
				x.Count += b.Count
				x.Sum += b.Sum
				x.Min = math.Min(x.Min, b.Min)
				x.Max = math.Max(x.Max, b.Max)
			default:
				bs = append(bs, Bucket{})
				copy(bs[i+1:], bs[i:])
				bs[i] = b
			}
			m.series[r][k] = bs
		}
	}
	return nil
}

// Scan implements Driver.
func (m *Memory) Scan(ctx context.Context, res Resolution, sel Selector, from, to time.Time, fn func(Bucket) bool) error {
	if res < Raw || res > Hour {
		return nil
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	for k, bs := range m.series[res] {
		if err := ctx.Err(); err != nil {
			return err
		}
		if k.metric != sel.Metric || !sel.match(k.labels) {
			continue
		}
		i := sort.Search(len(bs), func(i int) bool { return !bs[i].Start.Before(from) })
		for ; i < len(bs) && bs[i].Start.Before(to); i++ {
			if !fn(bs[i]) {
				return nil
			}
		}
	}
	return nil
}

// DeleteBefore implements Driver.
func (m *Memory) DeleteBefore(ctx context.Context, res Resolution, t time.Time) (int64, error) {
	if res < Raw || res > Hour {
		return 0, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for k, bs := range m.series[res] {
		i := sort.Search(len(bs), func(i int) bool { return !bs[i].Start.Before(t) })
		if i == 0 {
			continue
		}
		n += int64(i)
		if i == len(bs) {
			delete(m.series[res], k)
			continue
		}
		m.series[res][k] = append([]Bucket(nil), bs[i:]...)
	}
	return n, nil
}

// Close implements Driver; it drops the samples and the alert state.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.series {
		m.series[i] = map[seriesKey][]Bucket{}
	}
	m.alerts, m.rules = nil, nil
	return nil
}
