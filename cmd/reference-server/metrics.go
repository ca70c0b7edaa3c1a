package main

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cosmic-horizons/horizons/orchestrator"
)

// metrics are the server's Prometheus collectors, on a private registry
// (no global state).
type metrics struct {
	reg             *prometheus.Registry
	httpRequests    *prometheus.CounterVec
	httpDuration    *prometheus.HistogramVec
	eventsReceived  *prometheus.CounterVec
	eventsForwarded *prometheus.CounterVec
	streamClients   *prometheus.GaugeVec
	clientsDropped  *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "horizons_http_requests_total",
			Help: "HTTP requests by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "horizons_http_request_duration_seconds",
			Help:    "HTTP request latency by method and route pattern (streams excluded).",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
		eventsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "horizons_events_received_total",
			Help: "Job events the stream hub received from the bus, by type (redeliveries excluded).",
		}, []string{"type"}),
		eventsForwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "horizons_events_forwarded_total",
			Help: "Job events written to stream clients, by transport (ws or sse).",
		}, []string{"transport"}),
		streamClients: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "horizons_stream_clients",
			Help: "Connected stream clients by transport (ws or sse).",
		}, []string{"transport"}),
		clientsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "horizons_stream_clients_dropped_total",
			Help: "Stream clients the server disconnected, by transport and reason (slow, heartbeat).",
		}, []string{"transport", "reason"}),
	}
	m.reg.MustRegister(m.httpRequests, m.httpDuration, m.eventsReceived, m.eventsForwarded, m.streamClients, m.clientsDropped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, t := range []string{"ws", "sse"} {
		m.streamClients.WithLabelValues(t)
		m.eventsForwarded.WithLabelValues(t)
	}
	return m
}

// jobsCollector reports the number of jobs in each state, read from the
// store at scrape time so it is right after a restart too.
type jobsCollector struct {
	store orchestrator.Store
	desc  *prometheus.Desc
	errs  prometheus.Counter
}

func newJobsCollector(store orchestrator.Store) *jobsCollector {
	return &jobsCollector{
		store: store,
		desc:  prometheus.NewDesc("horizons_jobs", "Jobs by state.", []string{"state"}, nil),
		errs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "horizons_jobs_scrape_errors_total",
			Help: "Failed reads of the job counts at scrape time.",
		}),
	}
}

func (c *jobsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	c.errs.Describe(ch)
}

func (c *jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, st := range orchestrator.States {
		n, err := c.store.CountJobs(ctx, "", []orchestrator.State{st})
		if err != nil {
			c.errs.Inc()
			break
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), string(st))
	}
	c.errs.Collect(ch)
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// statusRecorder captures the status code. Unwrap lets
// http.ResponseController and the WebSocket upgrade reach the
// underlying writer's Flush and Hijack.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// streamRoutes are long-lived; their duration is not a latency.
var streamRoutes = map[string]bool{
	"GET /api/v1/ws":            true,
	"GET /api/v1/events/stream": true,
}

var knownMethods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true}

// instrument counts requests and observes latency per route pattern (the
// mux sets r.Pattern when it matches), so ids in paths do not explode the
// label set. Nothing from headers or the query (where tokens travel) is
// recorded.
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		code := rec.code
		if code == 0 {
			code = http.StatusOK
		}
		method := r.Method
		if !knownMethods[method] {
			method = "OTHER" // bound the label set
		}
		m.httpRequests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
		if !streamRoutes[route] {
			m.httpDuration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		}
	})
}
