// Package rediscache is the Redis tier of the cache package, on
// github.com/redis/go-redis/v9.
//
// Entries live under Config.Prefix + "k:" + key as the binary form of
// cache.MarshalEntry (which carries the key, so a read can never return
// another key's value) with a Redis TTL; each tag is a Redis set
// Prefix + "t:" + tag of the keys carrying it, whose TTL is extended to the
// longest entry's. Connection errors come back as errors wrapping
// cache.ErrUnavailable, which the Tiered cache counts and routes around.
package rediscache

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cosmic-horizons/horizons/cache"
)

// Defaults of Config.
const (
	DefaultPrefix  = "horizons:cache:"
	DefaultTimeout = 500 * time.Millisecond
)

// Config configures New and Open. A nil *Config means the defaults.
type Config struct {
	// Prefix starts every Redis key the tier writes (default
	// DefaultPrefix). Give each cache (and each test) its own.
	Prefix string
	// Name is the tier's name in stats (default "redis").
	Name string
	// Timeout bounds dialling, reads and writes when Open builds the
	// client (default DefaultTimeout); short, so a dead Redis degrades the
	// cache quickly instead of stalling it.
	Timeout time.Duration
}

// Tier is the Redis tier.
type Tier struct {
	rdb    redis.UniversalClient
	own    bool
	prefix string
	name   string
	closed atomic.Bool
}

// New returns a tier on an existing client; Close leaves the client open.
func New(rdb redis.UniversalClient, cfg *Config) (*Tier, error) {
	if rdb == nil {
		return nil, fmt.Errorf("%w: rediscache.New: nil client", cache.ErrInvalidArgument)
	}
	t := &Tier{rdb: rdb, prefix: DefaultPrefix, name: "redis"}
	if cfg != nil {
		if cfg.Prefix != "" {
			t.prefix = cfg.Prefix
		}
		if cfg.Name != "" {
			t.name = cfg.Name
		}
	}
	return t, nil
}

// Open connects to the Redis at rawURL (redis://[user:password@]host:port/db
// or rediss://) and returns a tier that owns the client. It does not wait
// for Redis: a server that is down degrades the cache until it comes up.
// Errors never show the password.
func Open(rawURL string, cfg *Config) (*Tier, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: rediscache: URL %q: %v", cache.ErrInvalidArgument, Redact(rawURL), redactErr(err, rawURL))
	}
	to := DefaultTimeout
	if cfg != nil && cfg.Timeout > 0 {
		to = cfg.Timeout
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = to, to, to
	opt.MaxRetries = 1
	opt.DialerRetries = 1
	t, _ := New(redis.NewClient(opt), cfg)
	t.own = true
	return t, nil
}

// CheckURL reports whether rawURL is a usable Redis URL, without
// connecting; the error never shows the password.
func CheckURL(rawURL string) error {
	if _, err := redis.ParseURL(rawURL); err != nil {
		return fmt.Errorf("%w: rediscache: URL %q: %v", cache.ErrInvalidArgument, Redact(rawURL), redactErr(err, rawURL))
	}
	return nil
}

// Redact returns rawURL with its password replaced by "xxxxx", even when
// rawURL does not parse.
func Redact(rawURL string) string {
	if pw := password(rawURL); pw != "" {
		return strings.ReplaceAll(rawURL, pw, "xxxxx")
	}
	return rawURL
}

// password extracts the password of scheme://user:password@host...
func password(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		p, _ := u.User.Password()
		return p
	}
	rest := rawURL
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	if _, p, ok := strings.Cut(rest[:at], ":"); ok {
		return p
	}
	return ""
}

func redactErr(err error, rawURL string) string {
	if pw := password(rawURL); pw != "" {
		return strings.ReplaceAll(err.Error(), pw, "xxxxx")
	}
	return err.Error()
}

// Name implements cache.Tier.
func (t *Tier) Name() string { return t.name }

// Client returns the underlying client.
func (t *Tier) Client() redis.UniversalClient { return t.rdb }

func (t *Tier) k(key string) string   { return t.prefix + "k:" + key }
func (t *Tier) tag(tag string) string { return t.prefix + "t:" + tag }

func (t *Tier) wrap(op, arg string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("rediscache: %s %q: %w", op, arg, err)
	}
	return fmt.Errorf("%w: rediscache: %s %q: %w", cache.ErrUnavailable, op, arg, err)
}

func (t *Tier) check(op, arg string) error {
	if t.closed.Load() {
		return fmt.Errorf("%w: rediscache: %s %q", cache.ErrClosed, op, arg)
	}
	return nil
}

// Get implements cache.Tier.
func (t *Tier) Get(ctx context.Context, key string) (cache.Entry, error) {
	if err := t.check("get", key); err != nil {
		return cache.Entry{}, err
	}
	b, err := t.rdb.Get(ctx, t.k(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return cache.Entry{}, fmt.Errorf("%w: key %q", cache.ErrNotFound, key)
	}
	if err != nil {
		return cache.Entry{}, t.wrap("get", key, err)
	}
	e, err := cache.UnmarshalEntry(b)
	if err != nil {
		return cache.Entry{}, fmt.Errorf("rediscache: get %q: %w", key, err)
	}
	if e.Key != key {
		return cache.Entry{}, fmt.Errorf("%w: key %q (the stored entry belongs to %q)", cache.ErrNotFound, key, e.Key)
	}
	if e.Expired(time.Now()) {
		return cache.Entry{}, fmt.Errorf("%w: key %q (expired)", cache.ErrNotFound, key)
	}
	return e, nil
}

// Set implements cache.Tier.
func (t *Tier) Set(ctx context.Context, e cache.Entry) error {
	if err := t.check("set", e.Key); err != nil {
		return err
	}
	var ttl time.Duration
	if !e.Expires.IsZero() {
		ttl = time.Until(e.Expires)
		if ttl < time.Millisecond {
			return t.Delete(ctx, e.Key)
		}
	}
	_, err := t.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, t.k(e.Key), cache.MarshalEntry(e), ttl)
		for _, tg := range e.Tags {
			tk := t.tag(tg)
			p.SAdd(ctx, tk, e.Key)
			if ttl == 0 {
				p.Persist(ctx, tk)
			} else {
				// NX sets a first TTL; GT only ever extends it (whole
				// seconds, rounded up). A tag set that already lives
				// forever gets a TTL here too: mixing entries with and
				// without expiry under one tag is not supported.
				sec := ttl.Truncate(time.Second) + time.Second
				p.ExpireNX(ctx, tk, sec)
				p.ExpireGT(ctx, tk, sec)
			}
		}
		return nil
	})
	if err != nil {
		return t.wrap("set", e.Key, err)
	}
	return nil
}

// Delete implements cache.Tier.
func (t *Tier) Delete(ctx context.Context, key string) error {
	if err := t.check("delete", key); err != nil {
		return err
	}
	if err := t.rdb.Del(ctx, t.k(key)).Err(); err != nil {
		return t.wrap("delete", key, err)
	}
	return nil
}

// DeleteTag implements cache.Tier: it deletes the members of the tag's set
// that still carry the tag (a key set again without it survives) and the
// set.
func (t *Tier) DeleteTag(ctx context.Context, tag string) error {
	if err := t.check("delete tag", tag); err != nil {
		return err
	}
	tk := t.tag(tag)
	keys, err := t.rdb.SMembers(ctx, tk).Result()
	if err != nil {
		return t.wrap("delete tag", tag, err)
	}
	if len(keys) > 0 {
		rk := make([]string, len(keys))
		for i, k := range keys {
			rk[i] = t.k(k)
		}
		vals, err := t.rdb.MGet(ctx, rk...).Result()
		if err != nil {
			return t.wrap("delete tag", tag, err)
		}
		var del []string
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue // gone already
			}
			e, err := cache.UnmarshalEntry([]byte(s))
			if err != nil || e.HasTag(tag) {
				del = append(del, rk[i])
			}
		}
		if len(del) > 0 {
			if err := t.rdb.Del(ctx, del...).Err(); err != nil {
				return t.wrap("delete tag", tag, err)
			}
		}
	}
	if err := t.rdb.Del(ctx, tk).Err(); err != nil {
		return t.wrap("delete tag", tag, err)
	}
	return nil
}

// Ping checks that Redis answers.
func (t *Tier) Ping(ctx context.Context) error {
	if err := t.rdb.Ping(ctx).Err(); err != nil {
		return t.wrap("ping", t.name, err)
	}
	return nil
}

// Close implements cache.Tier; it closes the client when Open made it.
func (t *Tier) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	if t.own {
		return t.rdb.Close()
	}
	return nil
}
