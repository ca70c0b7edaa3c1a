package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cosmic-horizons/horizons/analytics"
	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/audit"
	"github.com/cosmic-horizons/horizons/events/audit/sqlaudit"
	"github.com/cosmic-horizons/horizons/events/deadletters"
	"github.com/cosmic-horizons/horizons/events/health"
	"github.com/cosmic-horizons/horizons/events/jobmetrics"
	"github.com/cosmic-horizons/horizons/events/notify"
)

// eventsDBFile holds the audit chain and the dead letters.
const eventsDBFile = "events.db"

// Consumer groups of the server's consumers; each reads every job event
// once, independently of the others.
const (
	groupNotifications = notify.DefaultGroup
	groupAudit         = "horizons-audit"
	groupDeadLetters   = deadletters.DefaultGroup
	groupMetrics       = "horizons-metrics"
)

// Consumer (handler) names, as used by POST /api/v1/admin/replay and in
// dead letters.
const (
	consumerNotifications = "notifications"
	consumerAudit         = "audit"
	consumerDeadLetters   = "deadletters"
	consumerMetrics       = "metrics"
)

// metricsPrefix prefixes the metrics consumer's Prometheus names on
// /metrics (consumer_horizons_job_events_total, consumer_horizons_jobs,
// consumer_horizons_job_run_seconds, consumer_horizons_job_turnaround_seconds):
// the server already exports horizons_jobs from the store.
const metricsPrefix = "consumer_"

// eventSystem is the event transport and the server's consumers on it:
// notifications (to the hub), the compliance audit chain, the dead-letter
// box and the health monitor.
type eventSystem struct {
	tr     *eventTransport
	log    *slog.Logger
	db     *sql.DB // events.db: audit records and dead letters
	chain  *audit.Chain
	box    *deadletters.Box
	jobm   *jobmetrics.Collector
	health *health.Monitor
	notify *notify.Consumer

	routers []*message.Router
	subs    []message.Subscriber
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// eventsCatalogue is the default catalogue plus system.health.
func eventsCatalogue() *events.Catalogue {
	def := events.DefaultCatalogue()
	cat := &events.Catalogue{}
	for _, t := range def.Types() {
		e, _ := def.Lookup(t)
		cat.Register(e)
	}
	health.Register(cat)
	analytics.RegisterAlertEvents(cat)
	return cat
}

// openEvents connects the transport named by cfg.Events and opens the
// consumers' store. The consumers start with startConsumers.
func (s *server) openEvents(ctx context.Context, opts serverOptions) error {
	es := &eventSystem{log: s.log.With("component", "events")}
	s.evs = es
	tr, err := openEventTransport(ctx, s.cfg.Events, eventsOptions{
		Password: s.cfg.EventsPassword,
		Bus:      &events.BusConfig{Catalogue: eventsCatalogue(), Logger: s.log.With("component", "bus")},
		Logger:   s.log,
	})
	if err != nil {
		return err
	}
	es.tr = tr
	s.bus = tr.bus
	// The audit chain and the dead letters live beside the jobs: in
	// events.db in the data directory, or in the PostgreSQL job store that
	// several replicas share (one chain for all of them).
	dialect := sqlaudit.SQLite
	if dsn, ok := s.sharedStoreDSN(); ok {
		dialect = sqlaudit.Postgres
		if es.db, err = sql.Open("pgx", dsn); err != nil {
			return fmt.Errorf("events store in the job store: %w", scrubErr(err, secretsOf(dsn, "")))
		}
	} else {
		if es.db, err = sql.Open("sqlite", "file:"+filepath.Join(s.cfg.DataDir, eventsDBFile)+"?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)"); err != nil {
			return fmt.Errorf("events store in %q: %w", s.cfg.DataDir, err)
		}
		es.db.SetMaxOpenConns(1)
	}
	st, err := sqlaudit.New(ctx, es.db, &sqlaudit.Config{Dialect: dialect})
	if err != nil {
		return scrubErr(err, secretsOf(s.cfg.Store, s.cfg.StorePassword))
	}
	es.chain = audit.New(st)
	if es.box, err = deadletters.New(ctx, es.db, &deadletters.Config{Dialect: dialect}); err != nil {
		return scrubErr(err, secretsOf(s.cfg.Store, s.cfg.StorePassword))
	}
	interval := opts.HealthInterval
	if interval <= 0 {
		interval = health.DefaultInterval
	}
	es.health = health.New(&health.Config{Component: "reference-server", Transport: tr.scheme, Probe: tr.ping, Interval: interval})
	return nil
}

// startConsumers runs the consumers and returns once every subscription
// exists, so that events published afterwards reach them (on RabbitMQ a
// group's queue must exist before a publish, or the message is dropped).
func (s *server) startConsumers(ctx context.Context, opts serverOptions) error {
	es := s.evs
	var err error
	if es.notify, err = notify.New(s.hub, nil); err != nil {
		return err
	}
	if es.jobm == nil { // one per process: its metrics stay registered
		if es.jobm, err = jobmetrics.New(prometheus.WrapRegistererWithPrefix(metricsPrefix, s.metrics.reg), nil); err != nil {
			return err
		}
	}
	// Every replica's hub needs every job event, so with a shared job
	// store each replica reads notifications in a group of its own,
	// starting from now.
	notifyGroup := groupNotifications
	if _, shared := s.sharedStoreDSN(); shared {
		notifyGroup = groupNotifications + "." + groupSafe(s.cfg.ReplicaID)
		if es.tr.fromNewest == nil {
			es.tr.fromNewest = map[string]bool{}
		}
		es.tr.fromNewest[notifyGroup] = true
	}
	rc := s.cfg.EventsRetry
	rc.DeadLetters, rc.Logger, rc.Metrics = es.tr.bus.Publisher(), es.log, s.metrics.reg
	if opts.Router != nil {
		opts.Router(&rc)
	}
	main, err := events.NewRouter(rc)
	if err != nil {
		return err
	}
	main.AddMiddleware(es.health.Middleware)
	// Dead letters get a router of their own with no dead-letter topic, so
	// a dead letter that cannot be stored is retried, never dead-lettered
	// into its own topic.
	dlc := rc
	dlc.DeadLetters = nil
	dlc.Metrics = nil
	dlRouter, err := events.NewRouter(dlc)
	if err != nil {
		return err
	}
	es.routers = []*message.Router{main, dlRouter}

	type handler struct {
		router *message.Router
		name   string
		topic  string
		group  string
		h      message.NoPublishHandlerFunc
	}
	codec := es.tr.bus.Codec()
	hs := []handler{
		{main, consumerNotifications, events.TopicJobs, notifyGroup, es.notify.Handler().Watermill(codec)},
		{main, consumerAudit, events.TopicJobs, groupAudit, es.chain.Handler().Watermill(codec)},
		{main, consumerMetrics, events.TopicJobs, groupMetrics, events.HandlerFunc(es.jobm.Handle).Watermill(codec)},
		{main, consumerAnalytics, events.TopicJobs, groupAnalytics, events.HandlerFunc(s.an.collector.Handle).Watermill(codec)},
		{main, consumerNotifications + "-workflows", events.TopicWorkflows, notifyGroup, es.notify.Handler().Watermill(codec)},
		{main, consumerAudit + "-workflows", events.TopicWorkflows, groupAudit, es.chain.Handler().Watermill(codec)},
		{main, consumerCache, events.TopicJobs, groupCache, s.caches.inv.Handler().Watermill(codec)},
		{dlRouter, consumerDeadLetters, events.DefaultDeadLetterTopic, groupDeadLetters, s.storeDeadLetter},
	}
	groupTopics := map[string][]string{}
	for _, h := range hs {
		groupTopics[h.group] = append(groupTopics[h.group], h.topic)
	}
	if es.tr.lag != nil {
		es.health.SetLag(func(ctx context.Context) (map[string]int64, error) { return es.tr.lag(ctx, groupTopics) })
	}
	for _, h := range hs {
		sub, err := es.tr.subscriber(h.group)
		if err != nil {
			return fmt.Errorf("-events = %s: subscriber in group %s: %w", es.tr.redacted, h.group, err)
		}
		es.subs = append(es.subs, sub)
		if si, ok := sub.(message.SubscribeInitializer); ok {
			if err := si.SubscribeInitialize(h.topic); err != nil {
				return fmt.Errorf("-events = %s: initialise topic %s for group %s: %w", es.tr.redacted, h.topic, h.group, err)
			}
		}
		h.router.AddConsumerHandler(h.name, h.topic, sub, h.h)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	es.cancel = cancel
	for _, r := range es.routers {
		es.wg.Add(1)
		go func() {
			defer es.wg.Done()
			if err := r.Run(rctx); err != nil {
				es.log.Error("event router stopped", "err", err)
			}
		}()
	}
	for _, r := range es.routers {
		select {
		case <-r.Running():
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Minute):
			return fmt.Errorf("-events = %s: consumers did not start within a minute", es.tr.redacted)
		}
	}
	es.wg.Add(1)
	go func() {
		defer es.wg.Done()
		es.health.Run(rctx, s.bus, events.TopicHealth, func(err error) { es.log.Warn("health report not published", "err", err) })
	}()
	s.log.Info("event transport ready", "events", es.tr.redacted)
	return nil
}

// storeDeadLetter is the dead-letter consumer: it keeps each dead letter
// once and counts it for the health report. A message on the topic that is
// not a dead letter is logged and dropped.
func (s *server) storeDeadLetter(msg *message.Message) error {
	id, added, err := s.evs.box.Add(msg.Context(), msg)
	if errors.Is(err, deadletters.ErrNotDeadLetter) {
		s.evs.log.Warn("dropping a message on the dead-letter topic that is not a dead letter", "uuid", msg.UUID, "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	if added {
		s.evs.health.DeadLetter()
		s.evs.log.Warn("dead letter stored", "id", id, "handler", msg.Metadata.Get(events.MetaDeadLetterHandler), "reason", msg.Metadata.Get(events.MetaDeadLetterReason))
	}
	return nil
}

// consumerHandler returns the handler of a named consumer, for replays.
func (s *server) consumerHandler(name string) (events.HandlerFunc, bool) {
	switch name {
	case consumerNotifications:
		return s.evs.notify.Handler(), true
	case consumerAudit:
		return s.evs.chain.Handler(), true
	case consumerMetrics:
		return s.evs.jobm.Handle, true
	case consumerAnalytics:
		return s.an.collector.Handle, true
	}
	return nil, false
}

// eventsReady reports whether the event transport answers.
func (s *server) eventsReady(ctx context.Context) error {
	if s.evs == nil || s.evs.health == nil {
		return nil
	}
	return s.evs.health.Ready(ctx)
}

// closeEvents stops the consumers, then closes the bus, the transport's
// extra resources and the events store.
func (s *server) closeEvents() error {
	es := s.evs
	if es == nil {
		if s.bus != nil {
			return s.bus.Close()
		}
		return nil
	}
	var errs []error
	for _, r := range es.routers {
		if err := r.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close event router: %w", err))
		}
	}
	if es.cancel != nil {
		es.cancel()
	}
	es.wg.Wait()
	for _, sub := range es.subs {
		if err := sub.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close consumer subscriber: %w", err))
		}
	}
	if es.tr != nil {
		if err := es.tr.close(); err != nil {
			errs = append(errs, fmt.Errorf("close bus: %w", err))
		}
	}
	if es.db != nil {
		if err := es.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close events store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// sharedStoreDSN returns the PostgreSQL DSN of the job store (with the
// password from the environment filled in) when -store names one.
func (s *server) sharedStoreDSN() (string, bool) {
	u, err := url.Parse(s.cfg.Store)
	if err != nil || s.cfg.Store == "" || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", false
	}
	d := *u
	d.Scheme = "postgres"
	if s.cfg.StorePassword != "" && d.User != nil {
		if _, ok := d.User.Password(); !ok {
			d.User = url.UserPassword(d.User.Username(), s.cfg.StorePassword)
		}
	}
	return d.String(), true
}

// groupSafe maps s onto the characters every transport accepts in a
// consumer group name.
func groupSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}
