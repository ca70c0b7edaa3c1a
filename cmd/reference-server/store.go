package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"

	"github.com/cosmic-horizons/horizons/orchestrator"
	"github.com/cosmic-horizons/horizons/orchestrator/sqlstore"
)

// The job store: -store / HORIZONS_STORE. Empty (the default) is the SQLite
// file jobs.db in the data directory; sqlite://path names another SQLite
// file; postgres://user[:password]@host:port/db[?params] is PostgreSQL, where
// several servers may share one database (each is a replica with its own
// leases). The password may instead come from HORIZONS_STORE_PASSWORD; it
// never appears in logs or errors.
const (
	envStore         = "HORIZONS_STORE"
	envStorePassword = "HORIZONS_STORE_PASSWORD"
	envReplicaID     = "HORIZONS_REPLICA_ID"
)

// checkStoreURL validates a -store value; errors name the flag or variable
// and show the URL redacted.
func checkStoreURL(name, raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s = %s: not a URL; want sqlite://path or postgres://user@host:port/db", name, redactEventsURL(raw))
	}
	switch u.Scheme {
	case "sqlite":
		if u.Host+u.Path == "" {
			return fmt.Errorf("%s = %s: names no database file; want sqlite:///path/to/jobs.db", name, redactEventsURL(raw))
		}
	case "postgres", "postgresql":
		if u.Host == "" {
			return fmt.Errorf("%s = %s: names no host", name, redactEventsURL(raw))
		}
	default:
		return fmt.Errorf("%s = %s: unknown scheme %q; want sqlite or postgres", name, redactEventsURL(raw), u.Scheme)
	}
	return nil
}

// openJobStore opens the job store cfg names and returns it with a
// description safe to log.
func openJobStore(ctx context.Context, cfg config) (orchestrator.Store, string, error) {
	raw := cfg.Store
	if raw == "" {
		path := filepath.Join(cfg.DataDir, jobsDBFile)
		s, err := sqlstore.Open(ctx, sqlstore.Config{Driver: "sqlite", DSN: path})
		if err != nil {
			return nil, "", fmt.Errorf("job store in %q: %w", cfg.DataDir, err)
		}
		return s, "sqlite " + path, nil
	}
	red := redactEventsURL(raw)
	secrets := secretsOf(raw, cfg.StorePassword)
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", fmt.Errorf("-store = %s: not a URL", red)
	}
	if u.Scheme == "sqlite" {
		s, err := sqlstore.Open(ctx, sqlstore.Config{Driver: "sqlite", DSN: u.Host + u.Path})
		if err != nil {
			return nil, "", fmt.Errorf("job store %s: %w", red, err)
		}
		return s, "sqlite " + u.Host + u.Path, nil
	}
	d := *u
	d.Scheme = "postgres"
	if cfg.StorePassword != "" && d.User != nil {
		if _, ok := d.User.Password(); !ok {
			d.User = url.UserPassword(d.User.Username(), cfg.StorePassword)
		}
	}
	s, err := sqlstore.Open(ctx, sqlstore.Config{Driver: "pgx", DSN: d.String()})
	if err != nil {
		return nil, "", fmt.Errorf("job store %s: %w", red, scrubErr(err, secrets))
	}
	return s, "postgres " + red, nil
}

// replicaID names this server among the replicas sharing a job store:
// HORIZONS_REPLICA_ID, or the host name and listen port, which stay the same
// across restarts so a restarted server takes its own jobs back at once.
func replicaID(cfg config, getenv func(string) string) string {
	if getenv != nil {
		if id := strings.TrimSpace(getenv(envReplicaID)); id != "" {
			return id
		}
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	_, port, _ := net.SplitHostPort(cfg.Addr)
	if port == "" || port == "0" {
		// An ephemeral port is not stable: make the id unique instead.
		return host + "-" + uuid.NewString()[:8]
	}
	return host + ":" + port
}
