package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/cosmic-horizons/horizons/events"
)

// Environment variables read by the server. A flag given on the command line
// overrides its variable; a variable overrides the built-in default.
const (
	envAddr        = "HORIZONS_ADDR"
	envDataDir     = "HORIZONS_DATA_DIR"
	envSimSpeedUp  = "HORIZONS_SIM_SPEEDUP"
	envLogLevel    = "HORIZONS_LOG_LEVEL"
	envAdminToken  = "HORIZONS_ADMIN_TOKEN"
	envSimGPUs     = "HORIZONS_SIM_GPUS"
	envSimNodes    = "HORIZONS_SIM_NODES"
	envSimSeed     = "HORIZONS_SIM_SEED"
	envSimFailRate = "HORIZONS_SIM_FAILURE_RATE"
	envStreamConns = "HORIZONS_STREAM_CONNS_PER_USER"
	envOrigins     = "HORIZONS_ALLOWED_ORIGINS"
)

// Built-in defaults.
const (
	defaultAddr    = "127.0.0.1:8080"
	defaultDataDir = "./horizons-data"
	// defaultSimSpeedUp makes the simulated cluster run 30 times faster
	// than the modelled hardware. The typical job, the median built-in
	// agent (alphacal) on a dataset of the mean simulated size (25.5 GB) on
	// one GPU, is modelled at about 5 minutes and so finishes in about
	// 10 s: a newcomer sees a whole job lifecycle at once
	// (TestDefaultSpeedUp checks this against the run-time model).
	defaultSimSpeedUp = 30.0
	defaultLogLevel   = "info"
	defaultSimNodes   = 4
	defaultSimGPUs    = 4 // per node
	// minAdminTokenLen is the shortest HORIZONS_ADMIN_TOKEN accepted:
	// tokens are stored as unsalted SHA-256 hashes, which is sound only for
	// high-entropy secrets.
	minAdminTokenLen = 16
	// maxSimSpeedUp bounds -sim-speedup.
	maxSimSpeedUp = 1e6
)

// config is the server configuration after flags, environment and defaults
// are merged.
type config struct {
	// Addr is the TCP listen address.
	Addr string
	// DataDir holds jobs.db (jobs, events, outbox) and auth.db (users).
	DataDir string
	// SimSpeedUp divides the simulated run times.
	SimSpeedUp float64
	// SimNodes and SimGPUs size the simulated cluster (GPUs per node).
	SimNodes int
	SimGPUs  int
	// SimSeed seeds the simulator's failure injection.
	SimSeed int64
	// SimFailureRate is the probability that a simulated task fails.
	SimFailureRate float64
	// LogLevel is the slog level.
	LogLevel slog.Level
	// AdminToken, when non-empty, is the admin's bearer token.
	AdminToken string
	// Events is the event transport URL (-events, HORIZONS_EVENTS; see
	// events.go); EventsPassword its password from the environment.
	Events         string
	EventsPassword string
	// EventsRetry is the consumers' retry ladder (-events-retry).
	EventsRetry events.RouterConfig
	// CacheRedis and CacheDir add the Redis and disk cache tiers (see
	// cache.go); empty means in-process only.
	CacheRedis, CacheDir string
	// Store is the job store URL (-store, HORIZONS_STORE; see store.go):
	// empty for jobs.db in DataDir; StorePassword its password from the
	// environment.
	Store         string
	StorePassword string
	// ReplicaID names this server among those sharing the job store.
	ReplicaID string
	// StreamConnsPerUser bounds one user's WebSocket and SSE connections.
	StreamConnsPerUser int
	// AladinURL is where the dashboard loads Aladin Lite from; SkySurvey
	// the HiPS survey id it shows.
	AladinURL, SkySurvey string
	// SnapshotRetention is how long sky view snapshots are kept.
	SnapshotRetention time.Duration
	// AllowedOrigins are extra Origin patterns (besides the server's own
	// host) allowed to open streams.
	AllowedOrigins []string
	// Backend is the compute backend and its settings (backends.go).
	Backend backendConfig
	// Tapis configures the Tapis v3 backend (-tapis-*; see tapis.go).
	Tapis tapisConfig
	// Sim holds the simulated cluster's pools, node downtime and precision
	// (-sim-pools, -sim-node-downtime, -sim-mixed-precision; simpools.go).
	Sim simExtra
}

// errHelp is returned by parseConfig for -h / -help; main exits 0.
var errHelp = flag.ErrHelp

// parseConfig merges args, the environment (getenv) and the defaults. Every
// error names the flag or variable and the bad value; the admin token is
// never echoed.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var cfg config
	var errs []error
	env := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	// Environment first, each checked so a bad value names its variable.
	addr := env(envAddr, defaultAddr)
	data := env(envDataDir, defaultDataDir)
	speed, err := parseSpeedUp(envSimSpeedUp, env(envSimSpeedUp, strconv.FormatFloat(defaultSimSpeedUp, 'g', -1, 64)))
	errs = append(errs, err)
	nodes, err := parseCount(envSimNodes, env(envSimNodes, strconv.Itoa(defaultSimNodes)), 1, 1024)
	errs = append(errs, err)
	gpus, err := parseCount(envSimGPUs, env(envSimGPUs, strconv.Itoa(defaultSimGPUs)), 1, 64)
	errs = append(errs, err)
	seedStr := env(envSimSeed, "1")
	seed, err := strconv.ParseInt(seedStr, 10, 64)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s = %q: not an integer", envSimSeed, seedStr))
	}
	fail, err := parseRate(envSimFailRate, env(envSimFailRate, "0"))
	errs = append(errs, err)
	conns, err := parseCount(envStreamConns, env(envStreamConns, strconv.Itoa(defaultConnsPerUser)), 1, 1<<20)
	errs = append(errs, err)
	retentionStr := env(envSnapshotRetention, defaultSnapshotRetention.String())
	retention, err := time.ParseDuration(retentionStr)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s = %q: not a duration such as 720h", envSnapshotRetention, retentionStr))
	}
	levelStr := env(envLogLevel, defaultLogLevel)
	_, err = parseLevel(envLogLevel, levelStr)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return cfg, err
	}

	fs := flag.NewFlagSet("reference-server", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: reference-server [flags]\n\n"+
			"Runs the Cosmic Horizons platform on embedded defaults: a SQLite job store and\n"+
			"user table in the data directory, the in-memory event bus and a simulated GPU\n"+
			"cluster. Every flag has an environment variable; a flag overrides its variable.\n"+
			"%s sets the admin bearer token (otherwise one is generated on first start\n"+
			"and printed once).\n\nFlags:\n", envAdminToken)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.Addr, "addr", addr, "listen address (env "+envAddr+")")
	fs.StringVar(&cfg.DataDir, "data", data, "data directory for jobs.db and auth.db (env "+envDataDir+")")
	speedFlag := fs.String("sim-speedup", strconv.FormatFloat(speed, 'g', -1, 64), "simulated GPU cluster speed-up over the modelled hardware; 30 finishes a typical job in about 10 s (env "+envSimSpeedUp+")")
	fs.IntVar(&cfg.SimNodes, "sim-nodes", nodes, "simulated cluster nodes (env "+envSimNodes+")")
	fs.IntVar(&cfg.SimGPUs, "sim-gpus", gpus, "simulated GPUs per node (env "+envSimGPUs+")")
	fs.Int64Var(&cfg.SimSeed, "sim-seed", seed, "simulator seed for failure injection (env "+envSimSeed+")")
	failFlag := fs.String("sim-failure-rate", strconv.FormatFloat(fail, 'g', -1, 64), "probability 0-1 that a simulated task fails (env "+envSimFailRate+")")
	fs.IntVar(&cfg.StreamConnsPerUser, "stream-conns-per-user", conns, "WebSocket and SSE connections one user may hold open (env "+envStreamConns+")")
	fs.StringVar(&cfg.AladinURL, "aladin-url", env(envAladinURL, defaultAladinURL), "URL the dashboard loads Aladin Lite from at run time; the sky view falls back to its own plot when it cannot load (env "+envAladinURL+")")
	fs.DurationVar(&cfg.SnapshotRetention, "snapshot-retention", retention, "how long sky view snapshots are kept (env "+envSnapshotRetention+")")
	fs.StringVar(&cfg.SkySurvey, "sky-survey", env(envSkySurvey, defaultSkySurvey), "HiPS survey id of the sky view (env "+envSkySurvey+")")
	originsFlag := fs.String("allowed-origins", env(envOrigins, ""), "comma-separated Origin patterns, besides the server's own host, allowed to open streams (env "+envOrigins+")")
	levelFlag := fs.String("log-level", levelStr, "log level: debug, info, warn or error (env "+envLogLevel+")")
	// The default shown by -h is not the environment's value, which may
	// hold a password.
	eventsRetryFlag := fs.String("events-retry", env(envEventsRetry, ""), "consumers' retry ladder, e.g. retries=5,initial=1s,multiplier=2,max=30s,jitter=0.2,timeout=1m,retries.audit=10 (default 1,2,4,8,16 s with jitter, cap 30 s) (env "+envEventsRetry+")")
	eventsFlag := fs.String("events", "", "event transport URL: mem:// (default), kafka://host:port[,host:port], amqp://user@host:port/vhost, postgres://user@host:port/db or sqlite://path; the password may come from "+envEventsPassword+" (env "+envEvents+")")
	cacheRedisFlag, cacheDirFlag := cacheFlags(fs)
	storeFlag := fs.String("store", "", "job store URL: empty for jobs.db in the data directory, sqlite://path, or postgres://user@host:port/db (several servers may share one); the password may come from "+envStorePassword+" (env "+envStore+")")
	finishBackend := addBackendFlags(fs, getenv)
	finishTapis := tapisFlags(fs, getenv)
	finishSim := simFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if cfg.Backend, err = finishBackend(); err != nil {
		errs = append(errs, err)
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q: the server takes flags only (see -h)", fs.Arg(0))
	}
	if cfg.SimSpeedUp, err = parseSpeedUp("-sim-speedup", *speedFlag); err != nil {
		errs = append(errs, err)
	}
	if cfg.SimFailureRate, err = parseRate("-sim-failure-rate", *failFlag); err != nil {
		errs = append(errs, err)
	}
	if cfg.LogLevel, err = parseLevel("-log-level", *levelFlag); err != nil {
		errs = append(errs, err)
	}
	if cfg.Sim, err = finishSim(); err != nil {
		errs = append(errs, err)
	}
	if cfg.Tapis, err = finishTapis(); err != nil {
		errs = append(errs, err)
	} else if cfg.Backend.Kind == "tapis" {
		errs = append(errs, cfg.Tapis.check()...)
	}
	if err := checkSkyConfig(cfg); err != nil {
		errs = append(errs, err)
	}
	if cfg.StreamConnsPerUser < 1 {
		errs = append(errs, fmt.Errorf("-stream-conns-per-user = %d: must be at least 1", cfg.StreamConnsPerUser))
	}
	for _, o := range strings.Split(*originsFlag, ",") {
		if o = strings.TrimSpace(o); o != "" {
			if _, err := path.Match(o, ""); err != nil {
				errs = append(errs, fmt.Errorf("-allowed-origins: pattern %q: %v", o, err))
			}
			cfg.AllowedOrigins = append(cfg.AllowedOrigins, o)
		}
	}
	if cfg.SimNodes < 1 || cfg.SimNodes > 1024 {
		errs = append(errs, fmt.Errorf("-sim-nodes = %d: must be between 1 and 1024", cfg.SimNodes))
	}
	if cfg.SimGPUs < 1 || cfg.SimGPUs > 64 {
		errs = append(errs, fmt.Errorf("-sim-gpus = %d: must be between 1 and 64", cfg.SimGPUs))
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		errs = append(errs, fmt.Errorf("-addr = %q: want host:port (%v)", cfg.Addr, err))
	}
	if strings.TrimSpace(cfg.DataDir) == "" {
		errs = append(errs, fmt.Errorf("-data = %q: must not be empty", cfg.DataDir))
	}
	cfg.Events = strings.TrimSpace(*eventsFlag)
	eventsName := "-events"
	if cfg.Events == "" {
		cfg.Events, eventsName = env(envEvents, defaultEvents), envEvents
	}
	if err := checkEventsURL(eventsName, cfg.Events); err != nil {
		errs = append(errs, err)
	}
	cfg.EventsPassword = getenv(envEventsPassword)
	if cfg.EventsRetry, err = parseEventsRetry("-events-retry", *eventsRetryFlag); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, cfg.setCacheConfig(*cacheRedisFlag, *cacheDirFlag, getenv))
	cfg.Store = strings.TrimSpace(*storeFlag)
	storeName := "-store"
	if cfg.Store == "" {
		cfg.Store, storeName = env(envStore, ""), envStore
	}
	if err := checkStoreURL(storeName, cfg.Store); err != nil {
		errs = append(errs, err)
	}
	cfg.StorePassword = getenv(envStorePassword)
	cfg.ReplicaID = replicaID(cfg, getenv)
	cfg.AdminToken = getenv(envAdminToken)
	if cfg.AdminToken != "" && len(cfg.AdminToken) < minAdminTokenLen {
		errs = append(errs, fmt.Errorf("%s is %d characters long: want at least %d (the value is not shown)", envAdminToken, len(cfg.AdminToken), minAdminTokenLen))
	}
	if cfg.AdminToken != "" && strings.ContainsAny(cfg.AdminToken, " \t\r\n") {
		errs = append(errs, fmt.Errorf("%s contains white space (the value is not shown)", envAdminToken))
	}
	return cfg, errors.Join(errs...)
}

func parseSpeedUp(name, s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s = %q: not a number", name, s)
	}
	if v <= 0 || v > maxSimSpeedUp {
		return 0, fmt.Errorf("%s = %q: must be > 0 and <= %g", name, s, maxSimSpeedUp)
	}
	return v, nil
}

func parseRate(name, s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) {
		return 0, fmt.Errorf("%s = %q: not a number", name, s)
	}
	if v < 0 || v > 1 {
		return 0, fmt.Errorf("%s = %q: must be between 0 and 1", name, s)
	}
	return v, nil
}

func parseCount(name, s string, lo, hi int) (int, error) {
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%s = %q: not an integer", name, s)
	}
	if v < lo || v > hi {
		return 0, fmt.Errorf("%s = %q: must be between %d and %d", name, s, lo, hi)
	}
	return v, nil
}

func parseLevel(name, s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return 0, fmt.Errorf("%s = %q: want debug, info, warn or error", name, s)
	}
	return l, nil
}
