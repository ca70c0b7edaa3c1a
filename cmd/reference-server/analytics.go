package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cosmic-horizons/horizons/analytics"
	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/orchestrator"
)

// analyticsDBFile holds the analytics series when the job store is SQLite
// (a file of its own, so sampling never waits on the job store's single
// writer); with a PostgreSQL job store the series live in that database.
const analyticsDBFile = "analytics.db"

// Analytics consumer group and name (for POST /api/v1/admin/replay).
const (
	groupAnalytics    = analytics.DefaultGroup
	consumerAnalytics = "analytics"
)

// analyticsSampleInterval is how often the sampler records the gauges;
// alertInterval how often the alert rules are evaluated.
const (
	analyticsSampleInterval = 15 * time.Second
	alertInterval           = 30 * time.Second
)

// alertRules are the server's built-in rules: queue-depth surges and job
// error-rate spikes against their own baseline, a sustained high error
// rate, and a GPU utilisation drop per backend that reports usage.
func (s *server) alertRules() []analytics.Rule {
	rules := []analytics.Rule{
		{Name: "queue-depth-surge", Kind: analytics.KindAnomaly, Metric: analytics.MetricQueueDepth, Agg: analytics.AggMax, Step: time.Minute, Window: 3 * time.Hour, Threshold: 6, Clear: 4, For: 2 * time.Minute, Detector: analytics.DetectorConfig{Direction: analytics.Up, MinScale: 1}},
		{Name: "job-error-rate-spike", Kind: analytics.KindAnomaly, Metric: analytics.MetricJobFailure, Agg: analytics.AggAvg, Step: 5 * time.Minute, Window: 12 * time.Hour, Threshold: 6, Clear: 4, Detector: analytics.DetectorConfig{Direction: analytics.Up, MinScale: 0.05}},
		{Name: "job-error-rate-high", Kind: analytics.KindThreshold, Metric: analytics.MetricJobFailure, Agg: analytics.AggAvg, Step: 15 * time.Minute, Window: time.Hour, Threshold: 0.5, Clear: 0.25, For: 15 * time.Minute},
	}
	for _, b := range s.backends {
		rules = append(rules, analytics.Rule{Name: "gpu-utilisation-drop-" + b.Name(), Kind: analytics.KindAnomaly, Metric: analytics.MetricGPUUtilization, Filter: analytics.Labels{Backend: b.Name()},
			Step: 5 * time.Minute, Window: 3 * 24 * time.Hour, Threshold: 6, Clear: 4, For: 10 * time.Minute, Detector: analytics.DetectorConfig{Direction: analytics.Down, Season: 288, MinScale: 0.02}})
	}
	return rules
}

// analyticsSystem is the time-series store, its collector (an event
// consumer) and the sampler of gauges.
type analyticsSystem struct {
	db        *sql.DB // own SQLite file; nil when sharing the PostgreSQL store
	store     *analytics.Store
	collector *analytics.Collector
	alerts    *analytics.AlertEngine
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// openAnalytics opens the series store; it needs openEvents (which opened
// the shared PostgreSQL handle, if any) to have run.
func (s *server) openAnalytics(ctx context.Context) error {
	as := &analyticsSystem{}
	s.an = as
	var d *analytics.SQL
	var err error
	if _, shared := s.sharedStoreDSN(); shared && s.evs != nil && s.evs.db != nil {
		d, err = analytics.NewSQL(ctx, s.evs.db, &analytics.SQLConfig{Dialect: analytics.Postgres})
		if err != nil {
			return scrubErr(err, secretsOf(s.cfg.Store, s.cfg.StorePassword))
		}
	} else {
		path := filepath.Join(s.cfg.DataDir, analyticsDBFile)
		if as.db, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)"); err != nil {
			return fmt.Errorf("analytics store in %q: %w", s.cfg.DataDir, err)
		}
		as.db.SetMaxOpenConns(1)
		if d, err = analytics.NewSQL(ctx, as.db, nil); err != nil {
			return fmt.Errorf("analytics store %s: %w", path, err)
		}
	}
	if as.store, err = analytics.New(d, nil); err != nil {
		return err
	}
	as.collector, err = analytics.NewCollector(as.store, nil)
	return err
}

// startAnalytics runs the sampler: GPU utilisation and memory per backend,
// queue depth, consumer lag and dead letters, and hourly retention.
func (s *server) startAnalytics(ctx context.Context) error {
	as := s.an
	probes := map[string]analytics.Probe{
		"queue_depth": func(ctx context.Context, now time.Time) ([]analytics.Point, error) {
			n, err := s.store.CountJobs(ctx, "", []orchestrator.State{orchestrator.StateQueued})
			if err != nil {
				return nil, err
			}
			return []analytics.Point{{Metric: analytics.MetricQueueDepth, Value: float64(n)}}, nil
		},
		"gpus": func(ctx context.Context, now time.Time) ([]analytics.Point, error) {
			var pts []analytics.Point
			for _, b := range s.backends {
				gpus, err := b.Usage(ctx)
				if err != nil || len(gpus) == 0 {
					continue // a backend that does not report usage
				}
				var util float64
				var used, total int
				for _, g := range gpus {
					util += g.Utilization
					used += g.MemoryUsedMB
					total += g.MemoryTotalMB
				}
				l := analytics.Labels{Backend: b.Name()}
				pts = append(pts, analytics.Point{Metric: analytics.MetricGPUUtilization, Labels: l, Value: util / float64(len(gpus))})
				if total > 0 {
					pts = append(pts, analytics.Point{Metric: analytics.MetricGPUMemory, Labels: l, Value: float64(used) / float64(total)})
				}
			}
			return pts, nil
		},
		"events": func(ctx context.Context, now time.Time) ([]analytics.Point, error) {
			if s.evs == nil || s.evs.health == nil {
				return nil, nil
			}
			r := s.evs.health.Last()
			if r.CheckedAt == "" {
				return nil, nil
			}
			pts := []analytics.Point{{Metric: analytics.MetricDeadLetters, Value: float64(r.DeadLetters)}}
			if r.Lag != nil {
				var lag int64
				for _, n := range r.Lag {
					lag += n
				}
				pts = append(pts, analytics.Point{Metric: analytics.MetricConsumerLag, Value: float64(lag)})
			}
			return pts, nil
		},
	}
	sp, err := analytics.NewSampler(as.store, probes, &analytics.SamplerConfig{Interval: analyticsSampleInterval, Logger: s.log.With("component", "analytics")})
	if err != nil {
		return err
	}
	log := s.log.With("component", "alerts")
	as.alerts, err = analytics.NewAlertEngine(ctx, as.store, s.alertRules(), &analytics.AlertConfig{
		Logger: log,
		Publish: func(ctx context.Context, e events.Event) error {
			return s.bus.Publish(ctx, analytics.TopicAlerts, e)
		},
		// The hub sends an event with no owner to the admins only.
		Notify: func(ctx context.Context, e events.Event) error { return s.hub.Notify(ctx, "", e) },
	})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	as.cancel = cancel
	as.wg.Add(2)
	go func() {
		defer as.wg.Done()
		sp.Run(rctx, true)
	}()
	go func() {
		defer as.wg.Done()
		as.alerts.Run(rctx, alertInterval)
	}()
	return nil
}

// stopAnalytics stops the sampler and the alert engine; it runs before the event consumers
// (and the PostgreSQL handle the series may share with them) close.
func (s *server) stopAnalytics() {
	if as := s.an; as != nil && as.cancel != nil {
		as.cancel()
		as.wg.Wait()
		// No alert change is saved after this, so none can reach a store
		// that is about to close.
		if as.alerts != nil {
			_ = as.alerts.Close()
		}
	}
}

// closeAnalytics stops the sampler and closes the store; it runs after
// the event consumers stopped.
func (s *server) closeAnalytics() error {
	as := s.an
	if as == nil {
		return nil
	}
	s.stopAnalytics()
	var errs []error
	if as.store != nil {
		errs = append(errs, as.store.Close())
	}
	if as.db != nil {
		errs = append(errs, as.db.Close())
	}
	return errors.Join(errs...)
}

// analyticsRoutes adds the analytics endpoints.
func (s *server) analyticsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/analytics/series", s.authed(false, s.handleAnalyticsSeries))
	mux.HandleFunc("GET /api/v1/analytics/metrics", s.authed(false, s.handleAnalyticsMetrics))
	mux.HandleFunc("GET /api/v1/analytics/alerts", s.admin(s.handleListAlerts))
	mux.HandleFunc("POST /api/v1/analytics/alerts/{id}/acknowledge", s.admin(s.handleAckAlert))
	mux.HandleFunc("POST /api/v1/analytics/alerts/{id}/silence", s.admin(s.handleSilenceAlert))
}

func (s *server) alertEngine(w http.ResponseWriter, r *http.Request) *analytics.AlertEngine {
	if s.an == nil || s.an.alerts == nil {
		s.writeError(w, r, &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "alert engine not running"})
		return nil
	}
	return s.an.alerts
}

// handleListAlerts serves GET /api/v1/analytics/alerts?state=open|all
// (admin): the alerts, newest first; open (the default) keeps the firing
// ones.
func (s *server) handleListAlerts(w http.ResponseWriter, r *http.Request, u *user) {
	eng := s.alertEngine(w, r)
	if eng == nil {
		return
	}
	st := r.URL.Query().Get("state")
	if st != "" && st != "open" && st != "all" {
		s.writeError(w, r, badRequest("state", "state = %q: want open or all", st))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": eng.Alerts(st != "all"), "rules": eng.Rules()})
}

// handleAckAlert serves POST /api/v1/analytics/alerts/{id}/acknowledge.
func (s *server) handleAckAlert(w http.ResponseWriter, r *http.Request, u *user) {
	eng := s.alertEngine(w, r)
	if eng == nil {
		return
	}
	a, err := eng.Acknowledge(r.Context(), r.PathValue("id"), u.Name)
	if errors.Is(err, analytics.ErrAlertNotFound) {
		s.writeError(w, r, notFound("alert", r.PathValue("id")))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// maxSilence bounds a silence.
const maxSilence = 30 * 24 * time.Hour

// handleSilenceAlert serves POST /api/v1/analytics/alerts/{id}/silence
// with {"duration": "1h"}: the alert's rule raises and notifies nothing
// for that long (at most 30 days).
func (s *server) handleSilenceAlert(w http.ResponseWriter, r *http.Request, u *user) {
	eng := s.alertEngine(w, r)
	if eng == nil {
		return
	}
	var body struct {
		Duration string `json:"duration"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		s.writeError(w, r, badRequest("body", "want a JSON object {\"duration\": \"1h\"}: %v", err))
		return
	}
	d, err := time.ParseDuration(body.Duration)
	if err != nil || d <= 0 || d > maxSilence {
		s.writeError(w, r, badRequest("duration", "duration = %q: want a positive duration up to %v", body.Duration, maxSilence))
		return
	}
	a, err := eng.Silence(r.Context(), r.PathValue("id"), time.Now().Add(d))
	if errors.Is(err, analytics.ErrAlertNotFound) {
		s.writeError(w, r, notFound("alert", r.PathValue("id")))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// handleAnalyticsMetrics lists the known metrics.
func (s *server) handleAnalyticsMetrics(w http.ResponseWriter, r *http.Request, u *user) {
	if s.an == nil || s.an.store == nil {
		s.writeError(w, r, &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "analytics store not open"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"metrics": s.an.store.Metrics()})
}

// parseAnalyticsTime reads an RFC 3339 time or Unix seconds.
func parseAnalyticsTime(name, v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 && n < 1<<40 {
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Time{}, badRequest(name, "%s = %q: want an RFC 3339 time or Unix seconds", name, v)
}

// parseAnalyticsStep reads a Go duration ("5m") or whole seconds ("300").
func parseAnalyticsStep(v string) (time.Duration, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 && n < 1<<33 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, badRequest("step", "step = %q: want a positive duration (\"5m\") or whole seconds (\"300\")", v)
	}
	return d, nil
}

// handleAnalyticsSeries serves GET /api/v1/analytics/series?metric=&agent=
// &backend=&user=&from=&to=&step=&agg=&group_by=: aligned series. to
// defaults to now and from to 24 h before to. A user who is not an admin
// sees series across every user, or their own, never another user's.
func (s *server) handleAnalyticsSeries(w http.ResponseWriter, r *http.Request, u *user) {
	if s.an == nil || s.an.store == nil {
		s.writeError(w, r, &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "analytics store not open"})
		return
	}
	v := r.URL.Query()
	q := analytics.Query{
		Metric: v.Get("metric"),
		Filter: analytics.Labels{Agent: v.Get("agent"), Backend: v.Get("backend"), User: v.Get("user")},
		Agg:    analytics.Agg(v.Get("agg")),
	}
	var err error
	q.To = time.Now().UTC()
	if t := v.Get("to"); t != "" {
		if q.To, err = parseAnalyticsTime("to", t); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	q.From = q.To.Add(-24 * time.Hour)
	if f := v.Get("from"); f != "" {
		if q.From, err = parseAnalyticsTime("from", f); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if st := v.Get("step"); st != "" {
		if q.Step, err = parseAnalyticsStep(st); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if g := v.Get("group_by"); g != "" {
		q.GroupBy = strings.Split(g, ",")
	}
	if !u.isAdmin() {
		if q.Filter.User != "" && q.Filter.User != u.ID {
			s.writeError(w, r, &apiError{Status: http.StatusForbidden, Code: "forbidden", Field: "user", Message: "user = " + strconv.Quote(q.Filter.User) + ": only an admin sees another user's series"})
			return
		}
		for _, g := range q.GroupBy {
			if g == analytics.ByUser {
				s.writeError(w, r, &apiError{Status: http.StatusForbidden, Code: "forbidden", Field: "group_by", Message: "group_by = user: only an admin groups by user"})
				return
			}
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	res, err := s.an.store.Query(ctx, q)
	var qe *analytics.QueryError
	if errors.As(err, &qe) {
		s.writeError(w, r, badRequest(qe.Param, "%s = %q: %s", qe.Param, qe.Value, qe.Reason))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
