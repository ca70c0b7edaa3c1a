package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/tapis"
)

// Environment variables of the Tapis backend. The password and the token
// come from the environment only, never from a flag (flags show in ps).
const (
	envTapisURL        = "HORIZONS_TAPIS_URL"
	envTapisTenant     = "HORIZONS_TAPIS_TENANT"
	envTapisUser       = "HORIZONS_TAPIS_USER"
	envTapisApp        = "HORIZONS_TAPIS_APP"
	envTapisAppVersion = "HORIZONS_TAPIS_APP_VERSION"
	envTapisExecSystem = "HORIZONS_TAPIS_EXEC_SYSTEM"
	envTapisMaxGPUs    = "HORIZONS_TAPIS_MAX_GPUS"
	envTapisPassword   = "HORIZONS_TAPIS_PASSWORD"
	envTapisToken      = "HORIZONS_TAPIS_TOKEN"
)

// tapisStartTimeout bounds the start-up check of the Tapis credentials.
const tapisStartTimeout = 30 * time.Second

// tapisConfig is the Tapis backend's part of the server configuration.
type tapisConfig struct {
	URL, Tenant, User, App, AppVersion, ExecSystem string
	MaxGPUs                                        int
	// Password and Token come from the environment only.
	Password, Token string
}

// String never shows the password or the token.
func (c tapisConfig) String() string {
	return fmt.Sprintf("tapis{url:%s tenant:%s user:%s app:%s-%s exec_system:%s password_set:%t token_set:%t}",
		c.URL, c.Tenant, c.User, c.App, c.AppVersion, c.ExecSystem, c.Password != "", c.Token != "")
}

// tapisFlags registers the -tapis-* flags on fs with their environment
// values as defaults. The returned function, called after fs.Parse, gives
// the configuration; it checks only the form of the values, since they
// matter only when the Tapis backend is chosen (openTapis checks the rest).
func tapisFlags(fs *flag.FlagSet, getenv func(string) string) func() (tapisConfig, error) {
	env := func(k string) string { return strings.TrimSpace(getenv(k)) }
	url := fs.String("tapis-url", env(envTapisURL), "Tapis tenant base URL, e.g. https://tacc.tapis.io; empty means https://<tenant>.tapis.io (env "+envTapisURL+")")
	tenant := fs.String("tapis-tenant", env(envTapisTenant), "Tapis tenant id, e.g. tacc (env "+envTapisTenant+")")
	user := fs.String("tapis-user", env(envTapisUser), "Tapis user; the password comes from "+envTapisPassword+" or a JWT from "+envTapisToken+" (env "+envTapisUser+")")
	app := fs.String("tapis-app", env(envTapisApp), "Tapis app id that runs horizons-agent (env "+envTapisApp+")")
	version := fs.String("tapis-app-version", env(envTapisAppVersion), "version of the Tapis app (env "+envTapisAppVersion+")")
	system := fs.String("tapis-exec-system", env(envTapisExecSystem), "Tapis execution system id; empty means the app's default (env "+envTapisExecSystem+")")
	gpus := fs.String("tapis-max-gpus", env(envTapisMaxGPUs), "most GPUs one task may ask for on Tapis; default 4 (env "+envTapisMaxGPUs+")")
	return func() (tapisConfig, error) {
		c := tapisConfig{URL: strings.TrimSpace(*url), Tenant: strings.TrimSpace(*tenant), User: strings.TrimSpace(*user),
			App: strings.TrimSpace(*app), AppVersion: strings.TrimSpace(*version), ExecSystem: strings.TrimSpace(*system),
			MaxGPUs: 4, Password: getenv(envTapisPassword), Token: strings.TrimSpace(getenv(envTapisToken))}
		if g := strings.TrimSpace(*gpus); g != "" {
			n, err := strconv.Atoi(g)
			if err != nil || n < 0 || n > 1024 {
				return c, fmt.Errorf("-tapis-max-gpus = %q: want an integer from 0 to 1024", g)
			}
			c.MaxGPUs = n
		}
		return c, nil
	}
}

// check checks what can be checked without Tapis; messages name the flag
// and its variable, never a secret.
func (c tapisConfig) check() []error {
	var errs []error
	if c.URL == "" && c.Tenant == "" {
		errs = append(errs, fmt.Errorf("-backend tapis needs -tapis-url (%s) or -tapis-tenant (%s): both are empty", envTapisURL, envTapisTenant))
	}
	if c.Password == "" && c.Token == "" {
		errs = append(errs, fmt.Errorf("no Tapis credentials: set %s (with -tapis-user; the server mints and refreshes tokens) or %s (a Tapis JWT); both are read from the environment only", envTapisPassword, envTapisToken))
	}
	if c.Password != "" && c.User == "" {
		errs = append(errs, fmt.Errorf("-tapis-user (%s) is empty but %s is set", envTapisUser, envTapisPassword))
	}
	if c.App == "" || c.AppVersion == "" {
		errs = append(errs, fmt.Errorf("-tapis-app = %q and -tapis-app-version = %q: both are required (%s, %s): the Tapis app that runs horizons-agent", c.App, c.AppVersion, envTapisApp, envTapisAppVersion))
	}
	return errs
}

// newTapisBackend is the -backend tapis factory.
func newTapisBackend(ctx context.Context, cfg config, _ *agents.Registry, log *slog.Logger) (*backends.Backend, error) {
	return openTapis(ctx, cfg.Tapis, log)
}

// openTapis checks c, builds the Tapis backend and verifies at start-up
// that Tapis answers and takes the credentials, so a wrong URL, a missing
// or wrong password or token fails now with a message that says what to
// set.
func openTapis(ctx context.Context, c tapisConfig, log *slog.Logger) (*backends.Backend, error) {
	if err := errors.Join(c.check()...); err != nil {
		return nil, fmt.Errorf("tapis backend: %w", err)
	}
	cfg := &tapis.Config{URL: c.URL, Tenant: c.Tenant, Username: c.User, Password: c.Password, AppID: c.App, AppVersion: c.AppVersion,
		ExecSystemID: c.ExecSystem, MaxGPUs: c.MaxGPUs, Logger: log.With("component", "tapis")}
	if c.Password == "" {
		cfg.Token = c.Token
	}
	d, err := tapis.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("tapis backend: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, tapisStartTimeout)
	defer cancel()
	if err := d.Ping(pctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("tapis backend (%s): start-up check failed: %w", d.Config().URL, err)
	}
	log.Info("tapis backend ready", "tapis", d.Config())
	return backends.New(d, &backends.Options{Logger: log}), nil
}
