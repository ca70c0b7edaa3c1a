package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver for postgres:// event URLs
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/amqpbus"
	"github.com/cosmic-horizons/horizons/events/kafkabus"
	"github.com/cosmic-horizons/horizons/events/membus"
	"github.com/cosmic-horizons/horizons/events/sqlbus"
)

// Event transport settings.
const (
	envEvents         = "HORIZONS_EVENTS"
	envEventsPassword = "HORIZONS_EVENTS_PASSWORD"
	defaultEvents     = "mem://"
	// redactedSecret replaces a password wherever a URL or error is shown.
	redactedSecret = "xxxxx"
	// paramTopicPrefix is the URL parameter, understood by every scheme,
	// that prefixes every topic name (so that several deployments or test
	// runs can share one broker without seeing each other's events).
	paramTopicPrefix = "topic_prefix"
)

// eventTransport is the event transport chosen by -events: the server's
// bus, a way to open a subscriber in another consumer group, and a
// connectivity probe.
type eventTransport struct {
	// scheme is the URL scheme (mem, kafka, amqp, postgres, sqlite).
	scheme string
	// redacted is the URL with any password replaced, safe to log.
	redacted string
	// bus publishes (and subscribes in the default group).
	bus *events.Bus
	// subscriber opens a subscriber in consumer group group; the caller
	// closes it. On mem:// every subscriber sees every event.
	subscriber func(group string) (message.Subscriber, error)
	// fromNewest names the groups that, when new, start at the newest
	// message rather than the oldest retained one (where the transport
	// keeps history: Kafka). Set it before calling subscriber.
	fromNewest map[string]bool
	// ping checks that the broker or database answers.
	ping func(ctx context.Context) error
	// lag, where the transport can tell (Kafka, PostgreSQL, SQLite), returns the consumer lag
	// of each group over its topics (transport topic names); nil otherwise.
	lag func(ctx context.Context, groups map[string][]string) (map[string]int64, error)
	// closeExtra releases what the bus does not own (a *sql.DB).
	closeExtra func() error
	// prefix is the topic prefix (topic_prefix parameter).
	prefix string
}

// close closes the bus and whatever else the transport opened.
func (t *eventTransport) close() error {
	var errs []error
	if t.bus != nil {
		errs = append(errs, t.bus.Close())
	}
	if t.closeExtra != nil {
		errs = append(errs, t.closeExtra())
	}
	return errors.Join(errs...)
}

// redactEventsURL returns raw with its password (user info or a password
// query parameter) replaced, for logs and error messages. A URL that does
// not parse is not shown at all, since it may hold a password in a place we
// cannot find.
func redactEventsURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a URL that does not parse; not shown in case it holds a password)"
	}
	q := u.Query()
	changed := false
	for k := range q {
		if isSecretParam(k) {
			q.Set(k, redactedSecret)
			changed = true
		}
	}
	if _, ok := u.User.Password(); !ok && !changed {
		return raw
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

func isSecretParam(k string) bool {
	k = strings.ToLower(k)
	return k == "password" || k == "pass" || k == "passwd" || strings.HasSuffix(k, "_password") || k == "sslpassword"
}

// secretsOf returns the passwords raw and the environment carry, longest
// first, for scrubbing error texts and logs.
func secretsOf(raw, envPassword string) []string {
	var out []string
	if envPassword != "" {
		out = append(out, envPassword)
	}
	if u, err := url.Parse(raw); err == nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			out = append(out, pw, url.QueryEscape(pw), url.PathEscape(pw))
		}
		for k, vs := range u.Query() {
			if isSecretParam(k) {
				for _, v := range vs {
					if v != "" {
						out = append(out, v, url.QueryEscape(v))
					}
				}
			}
		}
	}
	return out
}

// scrub replaces every secret in s.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 3 {
			s = strings.ReplaceAll(s, sec, redactedSecret)
		}
	}
	return s
}

// scrubErr returns err with every secret removed from its text.
func scrubErr(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := scrub(msg, secrets); clean != msg {
		return errors.New(clean)
	}
	return err
}

// scrubHandler is a slog.Handler that removes secrets from messages and
// string attributes before they reach the next handler, so that a client
// library logging its connection string cannot leak the password.
type scrubHandler struct {
	next    slog.Handler
	secrets []string
}

func (h scrubHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h scrubHandler) Handle(ctx context.Context, r slog.Record) error {
	n := slog.NewRecord(r.Time, r.Level, scrub(r.Message, h.secrets), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		n.AddAttrs(h.scrubAttr(a))
		return true
	})
	return h.next.Handle(ctx, n)
}

func (h scrubHandler) scrubAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, scrub(v.String(), h.secrets))
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]any, len(attrs))
		for i, g := range attrs {
			out[i] = h.scrubAttr(g)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, scrub(err.Error(), h.secrets))
		}
		return slog.String(a.Key, scrub(v.String(), h.secrets))
	}
	return a
}

func (h scrubHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i] = h.scrubAttr(a)
	}
	return scrubHandler{next: h.next.WithAttrs(out), secrets: h.secrets}
}

func (h scrubHandler) WithGroup(name string) slog.Handler {
	return scrubHandler{next: h.next.WithGroup(name), secrets: h.secrets}
}

// checkEventsURL validates the -events value at configuration time, without
// connecting: the scheme is known and the URL parses. The error names the
// flag and shows the value redacted.
func checkEventsURL(name, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s = %s: not a URL; want mem://, kafka://host:port[,host:port], amqp://user@host:port/vhost, postgres://user@host:port/db or sqlite://path", name, redactEventsURL(raw))
	}
	switch u.Scheme {
	case "mem", "kafka", "amqp", "amqps", "postgres", "postgresql", "sqlite":
	default:
		return fmt.Errorf("%s = %s: unknown scheme %q; want mem, kafka, amqp, amqps, postgres or sqlite", name, redactEventsURL(raw), u.Scheme)
	}
	if u.Scheme == "sqlite" && u.Host+u.Path == "" {
		return fmt.Errorf("%s = %s: names no database file; want sqlite:///path/to/events.db or sqlite://relative.db", name, redactEventsURL(raw))
	}
	if (u.Scheme == "kafka" || strings.HasPrefix(u.Scheme, "amqp") || strings.HasPrefix(u.Scheme, "postgres")) && u.Host == "" {
		return fmt.Errorf("%s = %s: names no host", name, redactEventsURL(raw))
	}
	if p := u.Query().Get(paramTopicPrefix); p != "" && !validTopicPrefix(p) {
		return fmt.Errorf("%s = %s: parameter %s=%q: use letters, digits, '.', '_' or '-'", name, redactEventsURL(raw), paramTopicPrefix, p)
	}
	return nil
}

func validTopicPrefix(p string) bool {
	if len(p) > 100 {
		return false
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// eventsOptions are the inputs of openEventTransport besides the URL.
type eventsOptions struct {
	// Password, when set, is the broker or database password
	// (HORIZONS_EVENTS_PASSWORD); it fills in a URL user without one.
	Password string
	// Bus configures the bus (catalogue, codec).
	Bus *events.BusConfig
	// Logger receives the transports' logs.
	Logger *slog.Logger
	// Group is the default consumer group; empty means "horizons".
	Group string
}

// openEventTransport connects the transport named by raw. Errors name the
// -events flag and show the URL redacted; no password appears in them.
func openEventTransport(ctx context.Context, raw string, o eventsOptions) (*eventTransport, error) {
	secrets := secretsOf(raw, o.Password)
	red := redactEventsURL(raw)
	fail := func(err error) (*eventTransport, error) {
		return nil, fmt.Errorf("-events = %s: %w", red, scrubErr(err, secrets))
	}
	if err := checkEventsURL("-events", raw); err != nil {
		return nil, err
	}
	u, _ := url.Parse(raw)
	q := u.Query()
	prefix := q.Get(paramTopicPrefix)
	q.Del(paramTopicPrefix)
	u.RawQuery = q.Encode()
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	log = slog.New(scrubHandler{next: log.Handler(), secrets: secrets})
	group := o.Group
	if group == "" {
		group = "horizons"
	}
	if q.Get("group") != "" {
		group = q.Get("group")
	}
	t := &eventTransport{scheme: u.Scheme, redacted: red, prefix: prefix, ping: func(context.Context) error { return nil }}
	var pub message.Publisher
	var sub message.Subscriber
	switch u.Scheme {
	case "mem":
		cfg, err := membus.ParseURL(u.String(), &membus.Config{Logger: log.With("component", "membus")})
		if err != nil {
			return fail(err)
		}
		tr := membus.New(cfg)
		pub, sub = tr, tr
		t.subscriber = func(string) (message.Subscriber, error) { return nonClosing{tr}, nil }
	case "kafka":
		user := u.User
		u.User = nil
		brokers, cfg, err := kafkabus.ParseURL(u.String(), &kafkabus.Config{Logger: log.With("component", "kafkabus")})
		if err != nil {
			return fail(err)
		}
		cfg.ConsumerGroup = group
		if user != nil {
			pw, ok := user.Password()
			if !ok {
				pw = o.Password
			}
			name := user.Username()
			cfg.Sarama = func(c *sarama.Config) {
				c.Net.SASL.Enable = true
				c.Net.SASL.Mechanism = sarama.SASLTypePlaintext
				c.Net.SASL.User = name
				c.Net.SASL.Password = pw
			}
		}
		tr, err := kafkabus.New(brokers, cfg)
		if err != nil {
			return fail(err)
		}
		pub, sub = tr, tr
		t.subscriber = func(g string) (message.Subscriber, error) {
			c := *cfg
			c.ConsumerGroup = g
			if t.fromNewest[g] {
				c.StartFromNewest = true
			}
			return kafkabus.NewSubscriber(brokers, &c)
		}
		t.ping = func(ctx context.Context) error {
			sc := sarama.NewConfig()
			sc.Net.DialTimeout = 2 * time.Second
			sc.Metadata.Retry.Max = 0
			if cfg.Sarama != nil {
				cfg.Sarama(sc)
			}
			c, err := sarama.NewClient(brokers, sc)
			if err != nil {
				return scrubErr(err, secrets)
			}
			return c.Close()
		}
		t.lag = func(ctx context.Context, groups map[string][]string) (map[string]int64, error) {
			sc := sarama.NewConfig()
			sc.Version = kafkabus.DefaultVersion
			if cfg.Version != (sarama.KafkaVersion{}) {
				sc.Version = cfg.Version
			}
			sc.Net.DialTimeout = 2 * time.Second
			if cfg.Sarama != nil {
				cfg.Sarama(sc)
			}
			admin, err := sarama.NewClusterAdmin(brokers, sc)
			if err != nil {
				return nil, scrubErr(err, secrets)
			}
			defer admin.Close()
			client, err := sarama.NewClient(brokers, sc)
			if err != nil {
				return nil, scrubErr(err, secrets)
			}
			defer client.Close()
			return kafkaLag(client, admin, groups)
		}
	case "amqp", "amqps":
		if o.Password != "" && u.User != nil {
			if _, ok := u.User.Password(); !ok {
				u.User = url.UserPassword(u.User.Username(), o.Password)
			}
		}
		base := &amqpbus.Config{ConsumerGroup: group, Logger: log.With("component", "amqpbus"), Bus: o.Bus}
		q := u.Query()
		if v := q.Get("prefetch"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return fail(fmt.Errorf("URL parameter prefetch=%q, want a positive integer", v))
			}
			base.Prefetch = n
		}
		if v := q.Get("queue_expiry"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fail(fmt.Errorf("URL parameter queue_expiry=%q, want a duration such as 1h", v))
			}
			base.QueueExpiry = d
		}
		for _, k := range []string{"group", "prefetch", "queue_expiry"} {
			q.Del(k)
		}
		u.RawQuery = q.Encode()
		uri := u.String()
		tr, err := amqpbus.New(uri, base)
		if err != nil {
			return fail(err)
		}
		pub, sub = tr, tr
		t.subscriber = func(g string) (message.Subscriber, error) {
			c := *base
			c.ConsumerGroup = g
			tr, err := amqpbus.New(uri, &c)
			if err != nil {
				return nil, scrubErr(err, secrets)
			}
			return tr, nil
		}
		t.ping = func(ctx context.Context) error {
			conn, err := amqp091.DialConfig(uri, amqp091.Config{Dial: amqp091.DefaultDial(2 * time.Second)})
			if err != nil {
				return scrubErr(err, secrets)
			}
			return conn.Close()
		}
	case "postgres", "postgresql", "sqlite":
		cfg, dsn, driver, err := sqlBusConfig(u, o.Password, group)
		if err != nil {
			return fail(err)
		}
		secrets = append(secrets, secretsOf(dsn, "")...)
		cfg.Logger = log.With("component", "sqlbus")
		cfg.Bus = o.Bus
		db, err := sql.Open(driver, dsn)
		if err != nil {
			return fail(err)
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = db.PingContext(pctx)
		cancel()
		if err != nil {
			_ = db.Close()
			return fail(fmt.Errorf("connect: %w", err))
		}
		tr, err := sqlbus.New(db, cfg)
		if err != nil {
			_ = db.Close()
			return fail(err)
		}
		pub, sub = tr, tr
		t.subscriber = func(g string) (message.Subscriber, error) {
			c := *cfg
			c.ConsumerGroup = g
			return sqlbus.New(db, &c)
		}
		t.ping = func(ctx context.Context) error { return scrubErr(db.PingContext(ctx), secrets) }
		t.lag = func(ctx context.Context, groups map[string][]string) (map[string]int64, error) {
			out := map[string]int64{}
			for g, topics := range groups {
				for _, tp := range topics {
					n, err := sqlbus.Lag(ctx, db, cfg.Dialect, g, tp)
					if err != nil {
						return nil, scrubErr(err, secrets)
					}
					out[g] += n
				}
			}
			return out, nil
		}
		t.closeExtra = db.Close
	}
	if t.bus == nil {
		t.bus = events.NewBus(pub, sub, o.Bus)
	}
	if prefix != "" {
		t.bus = events.NewBus(prefixed{pub: t.bus.Publisher(), sub: t.bus.Subscriber(), prefix: prefix}, prefixed{pub: t.bus.Publisher(), sub: t.bus.Subscriber(), prefix: prefix}, o.Bus)
		if inner := t.lag; inner != nil {
			t.lag = func(ctx context.Context, groups map[string][]string) (map[string]int64, error) {
				pg := map[string][]string{}
				for g, topics := range groups {
					for _, tp := range topics {
						pg[g] = append(pg[g], prefix+tp)
					}
				}
				return inner(ctx, pg)
			}
		}
		inner := t.subscriber
		t.subscriber = func(g string) (message.Subscriber, error) {
			s, err := inner(g)
			if err != nil {
				return nil, err
			}
			return prefixed{sub: s, prefix: prefix}, nil
		}
	}
	return t, nil
}

// sqlBusConfig turns a postgres:// or sqlite:// URL into an sqlbus.Config,
// a DSN and a database/sql driver name. The parameters group,
// poll_interval and batch_size configure the bus; any other parameter is
// passed to the database.
func sqlBusConfig(u *url.URL, password, group string) (*sqlbus.Config, string, string, error) {
	cfg := &sqlbus.Config{ConsumerGroup: group}
	q := u.Query()
	for key := range q {
		v := q.Get(key)
		switch key {
		case "group":
		case "poll_interval":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, "", "", fmt.Errorf("URL parameter poll_interval=%q, want a duration such as 50ms", v)
			}
			cfg.PollInterval = d
		case "batch_size":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return nil, "", "", fmt.Errorf("URL parameter batch_size=%q, want a positive integer", v)
			}
			cfg.BatchSize = n
		default:
			continue
		}
		q.Del(key)
	}
	d := *u
	d.RawQuery = q.Encode()
	if u.Scheme == "sqlite" {
		cfg.Dialect = sqlbus.SQLite
		path := u.Host + u.Path
		if d.RawQuery != "" {
			return nil, "", "", fmt.Errorf("unknown URL parameter in %q for sqlite (want group, poll_interval or batch_size)", d.RawQuery)
		}
		return cfg, "file:" + path + "?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)&_txlock=immediate", "sqlite", nil
	}
	cfg.Dialect = sqlbus.Postgres
	if password != "" && d.User != nil {
		if _, ok := d.User.Password(); !ok {
			d.User = url.UserPassword(d.User.Username(), password)
		}
	}
	d.Scheme = "postgres"
	return cfg, d.String(), "pgx", nil
}

// nonClosing hides Close, for the consumers that share the in-memory
// transport with the bus (the bus closes it).
type nonClosing struct{ message.Subscriber }

func (nonClosing) Close() error { return nil }

// prefixed adds a prefix to every topic name on the way to the transport.
type prefixed struct {
	pub    message.Publisher
	sub    message.Subscriber
	prefix string
}

func (p prefixed) Publish(topic string, msgs ...*message.Message) error {
	return p.pub.Publish(p.prefix+topic, msgs...)
}

func (p prefixed) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return p.sub.Subscribe(ctx, p.prefix+topic)
}

// SubscribeInitialize creates the topic where the transport can.
func (p prefixed) SubscribeInitialize(topic string) error {
	if si, ok := p.sub.(message.SubscribeInitializer); ok {
		return si.SubscribeInitialize(p.prefix + topic)
	}
	return nil
}

// Close closes the side this value wraps; a value wrapping both sides is
// closed through the publisher only when the two are the same transport.
func (p prefixed) Close() error {
	var errs []error
	if p.sub != nil {
		errs = append(errs, p.sub.Close())
	}
	if p.pub != nil && any(p.pub) != any(p.sub) {
		errs = append(errs, p.pub.Close())
	}
	return errors.Join(errs...)
}

// kafkaLag sums, per group, the messages between the group's committed
// offset and the newest offset of every partition of its topics. A
// partition the group never committed counts from the oldest retained
// offset.
func kafkaLag(client sarama.Client, admin sarama.ClusterAdmin, groups map[string][]string) (map[string]int64, error) {
	out := map[string]int64{}
	for g, topics := range groups {
		parts := map[string][]int32{}
		for _, tp := range topics {
			ps, err := client.Partitions(tp)
			if err != nil {
				continue // not created yet: nothing to lag behind
			}
			parts[tp] = ps
		}
		if len(parts) == 0 {
			out[g] = 0
			continue
		}
		resp, err := admin.ListConsumerGroupOffsets(g, parts)
		if err != nil {
			return nil, fmt.Errorf("offsets of group %s: %w", g, err)
		}
		var lag int64
		for tp, ps := range parts {
			for _, p := range ps {
				newest, err := client.GetOffset(tp, p, sarama.OffsetNewest)
				if err != nil {
					return nil, fmt.Errorf("newest offset of %s/%d: %w", tp, p, err)
				}
				committed := int64(-1)
				if b := resp.GetBlock(tp, p); b != nil {
					committed = b.Offset
				}
				if committed < 0 {
					if committed, err = client.GetOffset(tp, p, sarama.OffsetOldest); err != nil {
						return nil, fmt.Errorf("oldest offset of %s/%d: %w", tp, p, err)
					}
				}
				if newest > committed {
					lag += newest - committed
				}
			}
		}
		out[g] = lag
	}
	return out, nil
}

// Retry ladder settings (-events-retry, HORIZONS_EVENTS_RETRY).
const envEventsRetry = "HORIZONS_EVENTS_RETRY"

// parseEventsRetry reads the consumers' retry ladder from a comma-separated
// list of key=value settings, each optional:
//
//	retries=5,initial=1s,multiplier=2,max=30s,jitter=0.2,timeout=1m,retries.audit=10
//
// (retries after the first attempt, the first wait, its growth, the cap,
// the jitter share, the per-attempt timeout, and retries for one named
// consumer: notifications, audit or deadletters). Empty means the
// defaults: 1, 2, 4, 8, 16 s with ±20 % jitter, capped at 30 s. The result
// is checked as NewRouter would check it.
func parseEventsRetry(name, s string) (events.RouterConfig, error) {
	var c events.RouterConfig
	s = strings.TrimSpace(s)
	if s == "" {
		return c, nil
	}
	bad := func(kv, want string) (events.RouterConfig, error) {
		return events.RouterConfig{}, fmt.Errorf("%s = %q: %q: want %s", name, s, kv, want)
	}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return bad(kv, "key=value")
		}
		switch {
		case k == "retries" || strings.HasPrefix(k, "retries."):
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 100 {
				return bad(kv, "a number of retries from 0 to 100")
			}
			if n == 0 {
				n = -1 // RouterConfig: negative means none
			}
			if k == "retries" {
				c.MaxRetries = n
				continue
			}
			consumer := strings.TrimPrefix(k, "retries.")
			switch consumer {
			case consumerNotifications, consumerAudit, consumerDeadLetters:
			default:
				return bad(kv, "retries.notifications, retries.audit or retries.deadletters")
			}
			if c.MaxRetriesByHandler == nil {
				c.MaxRetriesByHandler = map[string]int{}
			}
			c.MaxRetriesByHandler[consumer] = n
			c.MaxRetriesByHandler[consumer+"-workflows"] = n
		case k == "initial" || k == "max" || k == "timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return bad(kv, "a positive duration such as 2s")
			}
			switch k {
			case "initial":
				c.InitialInterval = d
			case "max":
				c.MaxInterval = d
			default:
				c.HandlerTimeout = d
			}
		case k == "multiplier" || k == "jitter":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return bad(kv, "a number")
			}
			if k == "multiplier" {
				c.Multiplier = f
			} else {
				if f == 0 {
					f = -1 // RouterConfig: negative means none
				}
				c.Jitter = f
			}
		default:
			return bad(kv, "one of retries, retries.<consumer>, initial, multiplier, max, jitter, timeout")
		}
	}
	if _, err := c.RetryDelays(); err != nil {
		return events.RouterConfig{}, fmt.Errorf("%s = %q: %v", name, s, err)
	}
	return c, nil
}
