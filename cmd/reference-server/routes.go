package main

import (
	"context"
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/cosmic-horizons/horizons/ephemeris/ephemhttp"
	"github.com/cosmic-horizons/horizons/orchestrator"
)

//go:embed dashboard
var dashboardFS embed.FS

// routes builds the HTTP handler. Patterns use the Go 1.22 ServeMux syntax
// (method and {wildcards}); the metrics middleware labels requests by
// pattern.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/users", s.authed(false, s.handleCreateUser))
	mux.HandleFunc("POST /api/v1/jobs", s.authed(false, s.handleSubmit))
	mux.HandleFunc("GET /api/v1/jobs", s.authed(false, s.handleListJobs))
	mux.HandleFunc("GET /api/v1/jobs/{id}", s.authed(false, s.handleGetJobCached))
	mux.HandleFunc("POST /api/v1/jobs/{id}/cancel", s.authed(false, s.handleCancel))
	mux.HandleFunc("GET /api/v1/jobs/{id}/events", s.authed(false, s.handleJobEvents))
	mux.HandleFunc("GET /api/v1/jobs/{id}/provenance", s.authed(false, s.handleProvenance))
	mux.HandleFunc("GET /api/v1/ws", s.authed(true, s.handleWS))
	mux.HandleFunc("GET /api/v1/events/stream", s.authed(true, s.handleSSE))
	s.eventRoutes(mux)
	s.workflowRoutes(mux)
	s.cacheRoutes(mux)
	s.analyticsRoutes(mux)

	// Ephemeris: public, no token.
	mux.Handle(ephemhttp.Prefix, ephemhttp.NewHandler(&ephemhttp.Config{Logger: s.log.With("component", "ephemeris"), Cache: s.ephemerisCache()}))

	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("GET /openapi.json", s.handleOpenAPI)
	mux.HandleFunc("GET /api/v1/dashboard/config", s.handleDashboardConfig)
	mux.HandleFunc("GET /api/v1/cluster/usage", s.authed(false, s.handleClusterUsage))
	s.skyRoutes(mux)

	static, _ := fs.Sub(dashboardFS, "dashboard")
	mux.Handle("GET /{$}", http.FileServerFS(static))
	mux.Handle("GET /dashboard/", http.StripPrefix("/dashboard/", http.FileServerFS(static)))

	// Anything else under /api/ is a JSON 404, not the mux's text page.
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	return s.metrics.instrument(s.accessLog(mux))
}

// accessLog writes one debug line per request: method, path (never the
// query, which may carry a token), status and duration.
func (s *server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.log.Enabled(r.Context(), slog.LevelDebug) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		s.log.Debug("http", "method", r.Method, "path", r.URL.Path, "status", rec.code, "duration", time.Since(start), "remote", r.RemoteAddr)
	})
}

// handleHealthz is the liveness probe: the process serves HTTP.
func (s *server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz is the readiness probe: started, not shutting down, and both
// databases answer.
func (s *server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": "starting or shutting down"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.store.CountJobs(ctx, "", []orchestrator.State{orchestrator.StateRunning}); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": "job store: " + err.Error()})
		return
	}
	if err := s.auth.ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": "user store: " + err.Error()})
		return
	}
	if err := s.eventsReady(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
