package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/local"
	"github.com/cosmic-horizons/horizons/backends/slurm"
)

// Compute backend selection: -backend sim|local|slurm|tapis (HORIZONS_BACKEND).
// Each backend's settings are flags with environment variables; secrets
// (the Slurm JWT) come from the environment or a file only, never from a
// flag that `ps` would show.
const (
	envBackend        = "HORIZONS_BACKEND"
	envLocalWorkers   = "HORIZONS_LOCAL_WORKERS"
	envSlurmURL       = "HORIZONS_SLURM_URL"
	envSlurmUser      = "HORIZONS_SLURM_USER"
	envSlurmToken     = "HORIZONS_SLURM_TOKEN"
	envSlurmTokenFile = "HORIZONS_SLURM_TOKEN_FILE"
	envSlurmPartition = "HORIZONS_SLURM_PARTITION"
	envSlurmWorkDir   = "HORIZONS_SLURM_WORKDIR"
	envSlurmRunner    = "HORIZONS_SLURM_RUNNER"
	envSlurmAPI       = "HORIZONS_SLURM_API_VERSION"
	envSlurmGPUs      = "HORIZONS_SLURM_GPUS"

	defaultBackend = "sim"
	// slurmVerifyTimeout bounds the start-up check of the Slurm settings.
	slurmVerifyTimeout = 20 * time.Second
)

// backendFactory builds one kind of compute backend at start-up. A bad
// setting the cluster reveals (unreachable URL, rejected token, unknown
// partition) is an error here, so the server does not start.
type backendFactory func(ctx context.Context, cfg config, reg *agents.Registry, log *slog.Logger) (*backends.Backend, error)

// backendKinds maps each -backend value to its factory. A new backend is
// one entry here plus its settings in addBackendFlags and backendConfig.
var backendKinds = map[string]backendFactory{
	"sim": func(_ context.Context, cfg config, reg *agents.Registry, log *slog.Logger) (*backends.Backend, error) {
		return newSimBackend(cfg, reg, log)
	},
	"local": newLocalBackend,
	"slurm": newSlurmBackend,
	"tapis": newTapisBackend, // tapis.go
}

func backendNames() string {
	names := make([]string, 0, len(backendKinds))
	for n := range backendKinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// backendConfig holds the backend choice and the settings of each kind.
type backendConfig struct {
	// Kind is the -backend value.
	Kind string
	// LocalWorkers is how many tasks the local backend runs at once; 0
	// means one per CPU.
	LocalWorkers int
	// Slurm settings. SlurmToken comes from HORIZONS_SLURM_TOKEN;
	// SlurmTokenFile is read before every request (so a re-minted token is
	// picked up). SlurmGPUs is the most GPUs one task may ask for; 0 means
	// the most any node of the partition has.
	SlurmURL, SlurmUser, SlurmPartition, SlurmWorkDir, SlurmRunner, SlurmAPI string
	SlurmToken, SlurmTokenFile                                               string
	SlurmGPUs                                                                int
}

// LogValue logs the settings without the token.
func (b backendConfig) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("kind", b.Kind)}
	if b.Kind == "slurm" {
		attrs = append(attrs, slog.String("url", b.SlurmURL), slog.String("user", b.SlurmUser),
			slog.String("partition", b.SlurmPartition), slog.String("workdir", b.SlurmWorkDir),
			slog.Bool("token_set", b.SlurmToken != ""), slog.String("token_file", b.SlurmTokenFile))
	}
	return slog.GroupValue(attrs...)
}

// addBackendFlags declares the backend flags on fs with defaults from the
// environment; the returned function, called after fs.Parse, checks them.
func addBackendFlags(fs *flag.FlagSet, getenv func(string) string) func() (backendConfig, error) {
	env := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	var b backendConfig
	fs.StringVar(&b.Kind, "backend", env(envBackend, defaultBackend), "compute backend: "+backendNames()+" (env "+envBackend+")")
	workersStr := env(envLocalWorkers, "0")
	workers := fs.String("local-workers", workersStr, "tasks the local backend runs at once; 0 means one per CPU (env "+envLocalWorkers+")")
	fs.StringVar(&b.SlurmURL, "slurm-url", env(envSlurmURL, ""), "slurmrestd base URL, e.g. http://127.0.0.1:6820 (env "+envSlurmURL+")")
	fs.StringVar(&b.SlurmUser, "slurm-user", env(envSlurmUser, ""), "Slurm user the jobs run as, sent as X-SLURM-USER-NAME (env "+envSlurmUser+")")
	fs.StringVar(&b.SlurmPartition, "slurm-partition", env(envSlurmPartition, ""), "Slurm partition; empty means the cluster's default (env "+envSlurmPartition+")")
	fs.StringVar(&b.SlurmTokenFile, "slurm-token-file", env(envSlurmTokenFile, ""), "file holding the Slurm JWT (scontrol token), re-read when it changes; or set "+envSlurmToken+" (env "+envSlurmTokenFile+")")
	fs.StringVar(&b.SlurmWorkDir, "slurm-workdir", env(envSlurmWorkDir, ""), "absolute job working directory on the cluster; default <data>/slurm-work (single-node or shared filesystem) (env "+envSlurmWorkDir+")")
	fs.StringVar(&b.SlurmRunner, "slurm-runner", env(envSlurmRunner, slurm.DefaultCommand), "agent runner the batch script executes: binary path on the cluster and subcommand (env "+envSlurmRunner+")")
	fs.StringVar(&b.SlurmAPI, "slurm-api-version", env(envSlurmAPI, "auto"), "slurmrestd API: v0.0.38, v0.0.41 or auto (env "+envSlurmAPI+")")
	gpusStr := env(envSlurmGPUs, "0")
	gpus := fs.String("slurm-gpus", gpusStr, "most GPUs one task may ask for; 0 means the most a node of the partition has (env "+envSlurmGPUs+")")
	return func() (backendConfig, error) {
		var errs []error
		b.Kind = strings.ToLower(strings.TrimSpace(b.Kind))
		if _, ok := backendKinds[b.Kind]; !ok {
			errs = append(errs, fmt.Errorf("-backend = %q: want one of %s", b.Kind, backendNames()))
		}
		var err error
		if b.LocalWorkers, err = parseCount("-local-workers", *workers, 0, 4096); err != nil {
			errs = append(errs, err)
		}
		if b.SlurmGPUs, err = parseCount("-slurm-gpus", *gpus, 0, 1<<16); err != nil {
			errs = append(errs, err)
		}
		b.SlurmToken = strings.TrimSpace(getenv(envSlurmToken))
		if b.Kind == "slurm" {
			errs = append(errs, b.checkSlurm()...)
		}
		return b, errors.Join(errs...)
	}
}

// checkSlurm checks what can be checked without the cluster. Messages
// name the flag and the value, never the token.
func (b *backendConfig) checkSlurm() []error {
	var errs []error
	if b.SlurmURL == "" {
		errs = append(errs, fmt.Errorf("-backend slurm needs -slurm-url (or %s): the slurmrestd URL, e.g. http://127.0.0.1:6820", envSlurmURL))
	} else if u, err := url.Parse(b.SlurmURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("-slurm-url = %q: want http(s)://host:port of slurmrestd", redactURL(b.SlurmURL)))
	} else if u.User != nil {
		errs = append(errs, fmt.Errorf("-slurm-url = %q: must not carry credentials; the token comes from %s or -slurm-token-file", redactURL(b.SlurmURL), envSlurmToken))
	}
	if b.SlurmUser == "" {
		errs = append(errs, fmt.Errorf("-backend slurm needs -slurm-user (or %s): the user the jobs run as", envSlurmUser))
	}
	switch {
	case b.SlurmToken == "" && b.SlurmTokenFile == "":
		errs = append(errs, fmt.Errorf("-backend slurm needs a token: set %s or -slurm-token-file (or %s) to a file holding the JWT from `scontrol token`", envSlurmToken, envSlurmTokenFile))
	case b.SlurmToken == "":
		if _, err := readTokenFile(b.SlurmTokenFile); err != nil {
			errs = append(errs, fmt.Errorf("-slurm-token-file = %q: %v", b.SlurmTokenFile, err))
		}
	}
	if b.SlurmWorkDir != "" && !filepath.IsAbs(b.SlurmWorkDir) {
		errs = append(errs, fmt.Errorf("-slurm-workdir = %q: want an absolute path on the cluster", b.SlurmWorkDir))
	}
	if strings.TrimSpace(b.SlurmRunner) == "" {
		errs = append(errs, errors.New("-slurm-runner is empty: give the agent runner command, e.g. /usr/local/bin/horizons-agent run"))
	}
	switch b.SlurmAPI {
	case "v0.0.38", "v0.0.41", "auto":
	default:
		errs = append(errs, fmt.Errorf("-slurm-api-version = %q: want v0.0.38, v0.0.41 or auto", b.SlurmAPI))
	}
	return errs
}

// redactURL drops a password from a URL for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

func readTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	tok = strings.TrimPrefix(tok, "SLURM_JWT=")
	if tok == "" {
		return "", errors.New("the file is empty")
	}
	return tok, nil
}

// tokenFile re-reads a token file when its modification time or size
// changes: the slurm backend's refresh hook.
type tokenFile struct {
	path string

	mu    sync.Mutex
	mod   time.Time
	size  int64
	token string
}

func (f *tokenFile) get(context.Context) (string, error) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return "", fmt.Errorf("token file %q: %w", f.path, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.token != "" && fi.ModTime().Equal(f.mod) && fi.Size() == f.size {
		return f.token, nil
	}
	tok, err := readTokenFile(f.path)
	if err != nil {
		return "", fmt.Errorf("token file %q: %w", f.path, err)
	}
	f.token, f.mod, f.size = tok, fi.ModTime(), fi.Size()
	return tok, nil
}

// newBackend builds the backend cfg.Backend.Kind names.
func newBackend(ctx context.Context, cfg config, reg *agents.Registry, log *slog.Logger) (*backends.Backend, error) {
	kind := cfg.Backend.Kind
	if kind == "" {
		kind = defaultBackend
	}
	f, ok := backendKinds[kind]
	if !ok {
		return nil, fmt.Errorf("-backend = %q: want one of %s", kind, backendNames())
	}
	return f(ctx, cfg, reg, log)
}

// runnableAgents is the registry of agents that run in this process (the
// built-in descriptors with their run functions).
func runnableAgents() *agents.Registry { return serverAgents() }

func newLocalBackend(_ context.Context, cfg config, _ *agents.Registry, log *slog.Logger) (*backends.Backend, error) {
	b, err := local.Open(&local.Config{
		Agents:  runnableAgents(),
		Workers: cfg.Backend.LocalWorkers,
		// No WorkDir: the agents keep their outputs in the result (local
		// leaves creating the directory to the agent, and the built-in
		// agents expect it to exist).
		Logger: log.With("component", "local"),
	}, &backends.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("-backend local: %w", err)
	}
	return b, nil
}

// newSlurmBackend opens the Slurm backend and checks the settings against
// the cluster: slurmrestd answers, the token is accepted, the partition
// exists. The GPU limit defaults to the most GPUs a node of the partition
// has.
func newSlurmBackend(ctx context.Context, cfg config, reg *agents.Registry, log *slog.Logger) (*backends.Backend, error) {
	bc := cfg.Backend
	workDir := bc.SlurmWorkDir
	if workDir == "" {
		abs, err := filepath.Abs(filepath.Join(cfg.DataDir, "slurm-work"))
		if err != nil {
			return nil, fmt.Errorf("-slurm-workdir: %w", err)
		}
		workDir = abs
		if err := os.MkdirAll(workDir, 0o777); err != nil {
			return nil, fmt.Errorf("-slurm-workdir %q: %w", workDir, err)
		}
	}
	sc := &slurm.Config{
		URL: bc.SlurmURL, UserName: bc.SlurmUser, Token: bc.SlurmToken, Partition: bc.SlurmPartition,
		WorkDir: workDir, Command: bc.SlurmRunner, APIVersion: bc.SlurmAPI, MaxGPUs: bc.SlurmGPUs,
		// The runner is cmd/horizons-agent of this release: it runs every
		// agent the server knows.
		Agents: reg.Names(),
		Logger: log.With("component", "slurm"),
	}
	if sc.Token == "" {
		sc.TokenFunc = (&tokenFile{path: bc.SlurmTokenFile}).get
	}
	check, err := slurm.New(sc)
	if err != nil {
		return nil, fmt.Errorf("-backend slurm: %w", err)
	}
	vctx, cancel := context.WithTimeout(ctx, slurmVerifyTimeout)
	cluster, err := check.Verify(vctx)
	cancel()
	check.Close()
	if err != nil {
		return nil, fmt.Errorf("-backend slurm: checking -slurm-url %s, -slurm-user %q and -slurm-partition %q: %w", bc.SlurmURL, bc.SlurmUser, bc.SlurmPartition, err)
	}
	if sc.MaxGPUs == 0 {
		sc.MaxGPUs = cluster.MaxGPUsPerNode
	}
	sc.TotalGPUs = max(cluster.TotalGPUs, sc.MaxGPUs)
	b, err := slurm.Open(sc, &backends.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("-backend slurm: %w", err)
	}
	log.Info("slurm backend ready", "url", bc.SlurmURL, "user", bc.SlurmUser, "partition", bc.SlurmPartition,
		"partitions", cluster.Partitions, "nodes", cluster.Nodes, "max_gpus", sc.MaxGPUs, "workdir", workDir, "runner", bc.SlurmRunner)
	return b, nil
}
