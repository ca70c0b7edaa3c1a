package membus

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/cosmic-horizons/horizons/events"
)

// Scheme is the URL scheme of this transport.
const Scheme = "mem"

// ParseURL reads a transport URL of the form
//
//	mem://?publish_timeout=5s&max_pending=1000&persistent=true
//
// into a Config built on base (nil means the zero Config; base is not
// modified). Every parameter is optional; "mem://" alone means the defaults.
func ParseURL(raw string, base *Config) (*Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("membus: URL does not parse: %w", err)
	}
	if u.Scheme != Scheme {
		return nil, fmt.Errorf("membus: URL scheme is %q, want %q", u.Scheme, Scheme)
	}
	if u.Host != "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("membus: URL %q names a host or path; an in-memory bus has none", raw)
	}
	cfg := Config{}
	if base != nil {
		cfg = *base
	}
	q := u.Query()
	for key := range q {
		v := q.Get(key)
		switch key {
		case "publish_timeout":
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, fmt.Errorf("membus: URL parameter publish_timeout=%q, want a duration such as 5s", v)
			}
			cfg.PublishTimeout = d
		case "max_pending":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("membus: URL parameter max_pending=%q, want a positive integer", v)
			}
			cfg.MaxPending = n
		case "persistent":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("membus: URL parameter persistent=%q, want true or false", v)
			}
			cfg.Persistent = b
		default:
			return nil, fmt.Errorf("membus: unknown URL parameter %q", key)
		}
	}
	return &cfg, nil
}

// OpenURL returns a Bus over a new Transport configured by ParseURL(raw, base).
func OpenURL(raw string, base *Config) (*events.Bus, error) {
	cfg, err := ParseURL(raw, base)
	if err != nil {
		return nil, err
	}
	return NewBus(cfg), nil
}
