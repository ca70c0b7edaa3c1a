package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cosmic-horizons/horizons/backends"
)

// Sky view defaults: Aladin Lite (GPL-3) is loaded by the browser at run
// time from this URL, never vendored; the HiPS survey is VLASS Quick Look,
// with DSS2 colour as the fallback survey.
const (
	defaultAladinURL    = "https://aladin.cds.unistra.fr/AladinLite/api/v3/latest/aladin.js"
	defaultSkySurvey    = "NRAO/P/VLASS-Quicklook-MedianStack"
	defaultSkyFallback  = "P/DSS2/color"
	envAladinURL        = "HORIZONS_ALADIN_URL"
	envSkySurvey        = "HORIZONS_SKY_SURVEY"
	usageRequestTimeout = 5 * time.Second
)

// dashboardConfig is GET /api/v1/dashboard/config: what the dashboard
// needs before it has a token.
type dashboardConfig struct {
	AladinURL    string `json:"aladin_url"`
	HiPS         string `json:"hips"`
	HiPSFallback string `json:"hips_fallback"`
}

// handleDashboardConfig serves GET /api/v1/dashboard/config (public: it
// holds no secret).
func (s *server) handleDashboardConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, dashboardConfig{AladinURL: s.cfg.AladinURL, HiPS: s.cfg.SkySurvey, HiPSFallback: defaultSkyFallback})
}

// backendUsage is one backend's GPUs in GET /api/v1/cluster/usage.
type backendUsage struct {
	Name  string              `json:"name"`
	GPUs  []backends.GPUUsage `json:"gpus"`
	Error string              `json:"error"`
}

type clusterUsage struct {
	Time     time.Time      `json:"time"`
	Backends []backendUsage `json:"backends"`
}

// handleClusterUsage serves GET /api/v1/cluster/usage: per-GPU
// utilisation and memory of every backend that reports it (the simulated
// cluster does), for the dashboard's heatmap. Only admins see which task
// holds a GPU.
func (s *server) handleClusterUsage(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := context.WithTimeout(r.Context(), usageRequestTimeout)
	defer cancel()
	out := clusterUsage{Time: time.Now().UTC(), Backends: []backendUsage{}}
	for _, b := range s.backends {
		bu := backendUsage{Name: b.Name(), GPUs: []backends.GPUUsage{}}
		gpus, err := s.backendUsage(ctx, b)
		if err != nil {
			bu.Error = err.Error()
		}
		for _, g := range gpus {
			if !u.isAdmin() {
				g.TaskID = ""
			}
			bu.GPUs = append(bu.GPUs, g)
		}
		out.Backends = append(out.Backends, bu)
	}
	writeJSON(w, http.StatusOK, out)
}

// checkSkyConfig checks -aladin-url (empty disables Aladin Lite: the sky
// view draws its own plot) and -sky-survey.
func checkSkyConfig(cfg config) error {
	if cfg.AladinURL != "" {
		u, err := url.Parse(cfg.AladinURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("-aladin-url = %q: want an http or https URL, or empty", cfg.AladinURL)
		}
	}
	if cfg.SnapshotRetention < time.Minute {
		return fmt.Errorf("-snapshot-retention = %s: want at least 1m", cfg.SnapshotRetention)
	}
	if strings.TrimSpace(cfg.SkySurvey) == "" || strings.ContainsAny(cfg.SkySurvey, " \t\r\n\"'<>") {
		return fmt.Errorf("-sky-survey = %q: want a HiPS id such as %s", cfg.SkySurvey, defaultSkySurvey)
	}
	return nil
}
