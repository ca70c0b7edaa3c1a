package analytics

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// RuleState is the durable per-rule state of an AlertEngine.
type RuleState struct {
	// Rule is the rule name.
	Rule string
	// BreachSince is when the rule's condition started holding (zero
	// when it does not hold), so a for-duration survives a restart.
	BreachSince time.Time
	// SilencedUntil mutes the rule until then (zero: not silenced).
	SilencedUntil time.Time
}

// AlertChange is one atomic update of the alert state: Alerts and Rules are
// stored (replacing those with the same ID or Rule), Drop names alert ids
// to delete.
type AlertChange struct {
	Alerts []Alert
	Rules  []RuleState
	Drop   []string
}

// AlertDriver is implemented by a Driver that keeps an AlertEngine's state
// (the alerts, open and resolved, with their acknowledgements and
// silences, and the rule states) across restarts. Memory and SQL implement
// it; with a Driver that does not, the engine keeps its state in memory
// only.
type AlertDriver interface {
	// SaveAlerts applies c, atomically where the driver can.
	SaveAlerts(ctx context.Context, c AlertChange) error
	// LoadAlerts returns the stored alerts, oldest raised first, and the
	// stored rule states.
	LoadAlerts(ctx context.Context) ([]Alert, []RuleState, error)
}

var (
	_ AlertDriver = (*Memory)(nil)
	_ AlertDriver = (*SQL)(nil)
)

// alertDoc is an alert as stored (the JSON of Alert).
func alertDoc(a Alert) ([]byte, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("analytics: encode alert %s: %w", a.ID, err)
	}
	return b, nil
}

func sortAlerts(as []Alert) {
	sort.SliceStable(as, func(i, j int) bool { return as[i].RaisedAt.Before(as[j].RaisedAt) })
}

// SaveAlerts implements AlertDriver.
func (m *Memory) SaveAlerts(ctx context.Context, c AlertChange) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	docs := make([][]byte, len(c.Alerts))
	for i, a := range c.Alerts {
		b, err := alertDoc(a)
		if err != nil {
			return err
		}
		docs[i] = b
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.alerts == nil {
		m.alerts, m.rules = map[string][]byte{}, map[string]RuleState{}
	}
	for i, a := range c.Alerts {
		m.alerts[a.ID] = docs[i]
	}
	for _, r := range c.Rules {
		m.rules[r.Rule] = r
	}
	for _, id := range c.Drop {
		delete(m.alerts, id)
	}
	return nil
}

// LoadAlerts implements AlertDriver.
func (m *Memory) LoadAlerts(ctx context.Context) ([]Alert, []RuleState, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	var as []Alert
	for id, b := range m.alerts {
		var a Alert
		if err := json.Unmarshal(b, &a); err != nil {
			return nil, nil, fmt.Errorf("analytics: decode alert %s: %w", id, err)
		}
		as = append(as, a)
	}
	sortAlerts(as)
	var rs []RuleState
	for _, r := range m.rules {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Rule < rs[j].Rule })
	return as, rs, nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// SaveAlerts implements AlertDriver in one transaction.
func (d *SQL) SaveAlerts(ctx context.Context, c AlertChange) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("analytics: save alerts: %w", err)
	}
	defer tx.Rollback()
	for _, a := range c.Alerts {
		doc, err := alertDoc(a)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO {p}alerts (id, rule, state, raised_at, doc) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET rule = excluded.rule, state = excluded.state, raised_at = excluded.raised_at, doc = excluded.doc`),
			a.ID, a.Rule, a.State, unixNano(a.RaisedAt), string(doc)); err != nil {
			return fmt.Errorf("analytics: save alert %s: %w", a.ID, err)
		}
	}
	for _, r := range c.Rules {
		if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO {p}alert_rules (rule, breach_since, silenced_until) VALUES (?, ?, ?)
ON CONFLICT (rule) DO UPDATE SET breach_since = excluded.breach_since, silenced_until = excluded.silenced_until`),
			r.Rule, unixNano(r.BreachSince), unixNano(r.SilencedUntil)); err != nil {
			return fmt.Errorf("analytics: save state of rule %q: %w", r.Rule, err)
		}
	}
	for _, id := range c.Drop {
		if _, err := tx.ExecContext(ctx, d.q(`DELETE FROM {p}alerts WHERE id = ?`), id); err != nil {
			return fmt.Errorf("analytics: drop alert %s: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("analytics: save alerts: commit: %w", err)
	}
	return nil
}

// LoadAlerts implements AlertDriver.
func (d *SQL) LoadAlerts(ctx context.Context) ([]Alert, []RuleState, error) {
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT id, doc FROM {p}alerts ORDER BY raised_at, id`))
	if err != nil {
		return nil, nil, fmt.Errorf("analytics: load alerts: %w", err)
	}
	defer rows.Close()
	var as []Alert
	for rows.Next() {
		var id, doc string
		if err := rows.Scan(&id, &doc); err != nil {
			return nil, nil, fmt.Errorf("analytics: load alerts: %w", err)
		}
		var a Alert
		if err := json.Unmarshal([]byte(doc), &a); err != nil {
			return nil, nil, fmt.Errorf("analytics: decode alert %s: %w", id, err)
		}
		as = append(as, a)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("analytics: load alerts: %w", err)
	}
	rows.Close()
	rrows, err := d.db.QueryContext(ctx, d.q(`SELECT rule, breach_since, silenced_until FROM {p}alert_rules ORDER BY rule`))
	if err != nil {
		return nil, nil, fmt.Errorf("analytics: load rule states: %w", err)
	}
	defer rrows.Close()
	var rs []RuleState
	for rrows.Next() {
		var r RuleState
		var b, s int64
		if err := rrows.Scan(&r.Rule, &b, &s); err != nil {
			return nil, nil, fmt.Errorf("analytics: load rule states: %w", err)
		}
		r.BreachSince, r.SilencedUntil = fromNano(b), fromNano(s)
		rs = append(rs, r)
	}
	if err := rrows.Err(); err != nil {
		return nil, nil, fmt.Errorf("analytics: load rule states: %w", err)
	}
	return as, rs, nil
}
