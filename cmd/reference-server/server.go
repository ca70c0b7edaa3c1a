package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/orchestrator"
)

// File names inside the data directory.
const (
	jobsDBFile = "jobs.db"
	authDBFile = "auth.db"
)

// shutdownTimeout bounds a graceful shutdown.
const shutdownTimeout = 15 * time.Second

// serverOptions are test seams; the zero value is the production wiring.
type serverOptions struct {
	// Backends replaces the simulated GPU cluster.
	Backends []*backends.Backend
	// Orchestrator adjusts the orchestrator configuration before New.
	Orchestrator func(*orchestrator.Config)
	// PingInterval and PongTimeout shorten the stream heartbeats.
	PingInterval, PongTimeout time.Duration
	// ClientBuffer is the per-client event buffer of the hub.
	ClientBuffer int
	// StreamWindow is how many messages the hub keeps for resuming.
	StreamWindow int
	// Logger replaces the stderr logger.
	Logger *slog.Logger
	// Router adjusts the event consumers' router configuration (retry
	// ladder, dead letters); HealthInterval the health report period.
	Router         func(*events.RouterConfig)
	HealthInterval time.Duration
}

// server is the assembled platform.
type server struct {
	cfg      config
	log      *slog.Logger
	auth     *authStore
	store    orchestrator.Store
	bus      *events.Bus
	evs      *eventSystem
	caches   *cacheSystem
	an       *analyticsSystem // analytics.go
	backends []*backends.Backend
	orch     *orchestrator.Orchestrator
	wf       *workflowSystem
	hub      *hub
	sky      *skyStore // annotations and snapshots of the sky view
	metrics  *metrics
	http     *http.Server
	ln       net.Listener

	pingInterval, pongTimeout time.Duration
	originPatterns            []string // extra origins allowed to open streams

	ready     atomic.Bool
	serveErr  chan error
	closeOnce sync.Once
	closeErr  error
}

// newServer opens the data directory, starts the orchestrator and listens
// on cfg.Addr. A generated admin token is printed to stdout, once. On error
// everything opened so far is closed again.
func newServer(ctx context.Context, cfg config, stdout io.Writer, opts serverOptions) (*server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	}
	s := &server{
		cfg: cfg, log: log, metrics: newMetrics(), serveErr: make(chan error, 1),
		pingInterval: opts.PingInterval, pongTimeout: opts.PongTimeout,
		originPatterns: cfg.AllowedOrigins,
	}
	if s.pingInterval <= 0 {
		s.pingInterval = defaultPingInterval
	}
	if s.pongTimeout <= 0 {
		s.pongTimeout = defaultPongTimeout
	}
	started := false
	defer func() {
		if !started {
			_ = s.closeResources(context.Background())
		}
	}()
	var err error
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory %q: %w", cfg.DataDir, err)
	}

	if s.auth, err = openAuthStore(ctx, filepath.Join(cfg.DataDir, authDBFile)); err != nil {
		return nil, err
	}
	if s.sky, err = openSkyStore(ctx, filepath.Join(cfg.DataDir, skyDBFile), cfg.SnapshotRetention); err != nil {
		return nil, err
	}
	generated, err := s.auth.bootstrapAdmin(ctx, cfg.AdminToken)
	if err != nil {
		return nil, err
	}
	if generated != "" {
		fmt.Fprintf(stdout, "Generated the admin token (shown only this once; set %s to choose your own):\n\n    %s\n\n", envAdminToken, generated)
	}

	if err := s.openCache(ctx); err != nil {
		return nil, err
	}
	var storeDesc string
	if s.store, storeDesc, err = openJobStore(ctx, cfg); err != nil {
		return nil, err
	}
	log.Info("job store open", "store", storeDesc, "replica", cfg.ReplicaID)
	s.metrics.reg.MustRegister(newJobsCollector(s.store))
	if err := s.openEvents(ctx, opts); err != nil {
		return nil, err
	}
	if err := s.openAnalytics(ctx); err != nil {
		return nil, err
	}

	reg := serverAgents()
	if len(opts.Backends) > 0 {
		s.backends = opts.Backends
	} else {
		b, err := newBackend(ctx, cfg, reg, log)
		if err != nil {
			return nil, err
		}
		s.backends = []*backends.Backend{b}
	}
	ocfg := &orchestrator.Config{
		Backends:  s.backends,
		Agents:    reg,
		Logger:    log,
		ReplicaID: cfg.ReplicaID,
	}
	if opts.Orchestrator != nil {
		opts.Orchestrator(ocfg)
	}
	if s.orch, err = orchestrator.New(s.store, s.bus, ocfg); err != nil {
		return nil, err
	}

	// The consumers (notifications to the hub, audit, dead letters)
	// subscribe before the orchestrator starts, so they see the events
	// recovery and the outbox forward at start-up too.
	s.hub = newHub(s.bus, events.TopicJobs, log, s.metrics, hubConfig{Buffer: opts.ClientBuffer, Window: opts.StreamWindow, ConnsPerUser: cfg.StreamConnsPerUser})
	if err := s.startConsumers(ctx, opts); err != nil {
		return nil, err
	}
	if err := s.openWorkflows(ctx, ocfg.PollInterval); err != nil {
		return nil, err
	}
	if err := s.orch.Start(ctx); err != nil {
		return nil, err
	}
	if err := s.startWorkflows(ctx); err != nil {
		return nil, err
	}
	if err := s.startCacheWarmers(ctx); err != nil {
		return nil, err
	}
	if err := s.startAnalytics(ctx); err != nil {
		return nil, err
	}

	if s.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("-addr %q: %w", cfg.Addr, err)
	}
	s.http = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// Shutdown stops accepting, then runs this: stream handlers end, so it
	// need not wait for them.
	s.http.RegisterOnShutdown(s.hub.closeClients)
	go func() {
		err := s.http.Serve(s.ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveErr <- err
	}()
	started = true
	s.ready.Store(true)
	fmt.Fprintf(stdout, "Cosmic Horizons reference server listening on http://%s (data in %s)\n", s.ln.Addr(), cfg.DataDir)
	log.Info("server started", "addr", s.ln.Addr().String(), "data", cfg.DataDir, "sim_speedup", cfg.SimSpeedUp, "events", s.evs.tr.redacted)
	return s, nil
}

// addr returns the bound listen address.
func (s *server) addr() string { return s.ln.Addr().String() }

// shutdown stops the server gracefully: stop accepting and drain requests
// (closing the stream clients), stop the orchestrator (its last outbox
// sweep still reaches the bus), then close the hub, bus, backends and
// stores. It is safe to call more than once.
func (s *server) shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.ready.Store(false)
		var errs []error
		if s.http != nil {
			if err := s.http.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("http shutdown: %w", err))
				_ = s.http.Close()
			}
			if err := <-s.serveErr; err != nil {
				errs = append(errs, err)
			}
		}
		errs = append(errs, s.closeResources(ctx))
		s.closeErr = errors.Join(errs...)
		s.log.Info("server stopped")
	})
	return s.closeErr
}

// closeResources stops whatever newServer started, in reverse order.
func (s *server) closeResources(ctx context.Context) error {
	var errs []error
	if s.wf != nil {
		if err := s.wf.stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop workflow engine: %w", err))
		}
	}
	if s.orch != nil {
		if err := s.orch.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop orchestrator: %w", err))
		}
	}
	if s.hub != nil {
		s.hub.stop()
	}
	s.stopAnalytics()
	if err := s.closeEvents(); err != nil {
		errs = append(errs, err)
	}
	if err := s.closeCache(); err != nil {
		errs = append(errs, err)
	}
	if err := s.closeAnalytics(); err != nil {
		errs = append(errs, fmt.Errorf("close analytics: %w", err))
	}
	for _, b := range s.backends {
		if err := b.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close backend %s: %w", b.Name(), err))
		}
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close job store: %w", err))
		}
	}
	if s.sky != nil {
		if err := s.sky.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close sky store: %w", err))
		}
	}
	if s.auth != nil {
		if err := s.auth.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close user store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// run is main without the process: it parses args and env, starts the
// server, and serves until ctx is done (then shuts down gracefully) or the
// listener fails.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	return runConfig(ctx, cfg, stdout, serverOptions{})
}

func runConfig(ctx context.Context, cfg config, stdout io.Writer, opts serverOptions) error {
	s, err := newServer(ctx, cfg, stdout, opts)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-s.serveErr:
		s.serveErr <- err // shutdown reports it
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	return s.shutdown(sctx)
}
