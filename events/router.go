package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrPermanent marks a handler failure that retrying cannot fix. A handler
// error wrapping it (or ErrDecode) skips the remaining retries and goes to the
// dead-letter topic at once.
var ErrPermanent = errors.New("events: permanent failure")

// Router defaults, used where RouterConfig leaves a field zero. They follow
// the retry ladder 1, 2, 4, 8, 16 s with jitter, capped at 30 s.
const (
	DefaultMaxRetries      = 5
	DefaultInitialInterval = time.Second
	DefaultMultiplier      = 2.0
	DefaultMaxInterval     = 30 * time.Second
	DefaultJitter          = 0.2
	DefaultHandlerTimeout  = time.Minute
	DefaultCloseTimeout    = 30 * time.Second
	// DefaultDeadLetterTopic receives the messages whose handler failed
	// every attempt.
	DefaultDeadLetterTopic = "horizons.deadletter"
)

// Metadata keys that NewRouter's dead-letter (poison queue) middleware sets on
// a dead letter, besides every key the original message carried.
const (
	// MetaDeadLetterReason is the error of the last attempt.
	MetaDeadLetterReason = middleware.ReasonForPoisonedKey
	// MetaDeadLetterTopic is the topic the message was consumed from.
	MetaDeadLetterTopic = middleware.PoisonedTopicKey
	// MetaDeadLetterHandler is the name of the handler that failed.
	MetaDeadLetterHandler = middleware.PoisonedHandlerKey
	// MetaAttempts is the number of times the handler ran for the message
	// in this delivery (set on a message that failed every attempt).
	MetaAttempts = "attempts"
	// MetaDeadLetterID is a UUID that identifies one dead-lettering of a
	// message (a message replayed and failed again gets a new one), so a
	// store of dead letters can keep each once under redelivery.
	MetaDeadLetterID = "dead_letter_id"
)

// RouterConfig configures NewRouter. The zero value means the defaults named
// on each field.
type RouterConfig struct {
	// MaxRetries is the number of retries after the first attempt; zero
	// means DefaultMaxRetries, a negative value means no retries.
	MaxRetries int
	// MaxRetriesByHandler overrides MaxRetries for the handlers it names
	// (the name given to AddConsumerHandler), so each consumer can have its
	// own number of attempts; a negative value means no retries.
	MaxRetriesByHandler map[string]int
	// InitialInterval is the wait before the first retry; zero means
	// DefaultInitialInterval.
	InitialInterval time.Duration
	// Multiplier scales the wait after each retry; zero means
	// DefaultMultiplier. It must be at least 1.
	Multiplier float64
	// MaxInterval caps the wait between retries; zero means
	// DefaultMaxInterval.
	MaxInterval time.Duration
	// Jitter spreads each wait uniformly over ±Jitter of its value; zero
	// means DefaultJitter, a negative value means none. It must be below 1.
	Jitter float64
	// HandlerTimeout bounds one attempt: the message context is cancelled
	// after it. Zero means DefaultHandlerTimeout, a negative value means no
	// limit.
	HandlerTimeout time.Duration
	// DeadLetters receives the messages whose handler failed every attempt.
	// Nil means no dead-letter topic: such a message is nacked, and the
	// transport redelivers it.
	DeadLetters message.Publisher
	// DeadLetterTopic is the topic dead letters are published to; empty
	// means DefaultDeadLetterTopic.
	DeadLetterTopic string
	// CloseTimeout is how long Router.Close waits for running handlers;
	// zero means DefaultCloseTimeout.
	CloseTimeout time.Duration
	// Logger receives the router's logs; nil means slog.Default().
	Logger *slog.Logger
	// Metrics, when set, receives the router's Prometheus metrics:
	// horizons_events_handled_total{handler,event_type,outcome} (outcome
	// "ok", "dead_letter" or "failed") and
	// horizons_events_handler_seconds{handler} (all attempts of one
	// delivery). Nil means no metrics.
	Metrics prometheus.Registerer
}

func (c RouterConfig) withDefaults() (RouterConfig, error) {
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	} else if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.InitialInterval == 0 {
		c.InitialInterval = DefaultInitialInterval
	}
	if c.Multiplier == 0 {
		c.Multiplier = DefaultMultiplier
	}
	if c.MaxInterval == 0 {
		c.MaxInterval = DefaultMaxInterval
	}
	if c.Jitter == 0 {
		c.Jitter = DefaultJitter
	} else if c.Jitter < 0 {
		c.Jitter = 0
	}
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = DefaultHandlerTimeout
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = DefaultDeadLetterTopic
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.InitialInterval < 0:
		return c, fmt.Errorf("events: RouterConfig.InitialInterval is %v, want > 0", c.InitialInterval)
	case c.Multiplier < 1:
		return c, fmt.Errorf("events: RouterConfig.Multiplier is %v, want >= 1", c.Multiplier)
	case c.MaxInterval < c.InitialInterval:
		return c, fmt.Errorf("events: RouterConfig.MaxInterval is %v, below InitialInterval %v", c.MaxInterval, c.InitialInterval)
	case c.Jitter >= 1:
		return c, fmt.Errorf("events: RouterConfig.Jitter is %v, want < 1", c.Jitter)
	case c.CloseTimeout < 0:
		return c, fmt.Errorf("events: RouterConfig.CloseTimeout is %v, want > 0", c.CloseTimeout)
	}
	return c, nil
}

// NewRouter returns a watermill Router with the standard middleware, applied
// to every handler as one layer (one stack frame and no allocation on the
// success path beyond the attempt's context), which does, from the outside
// in:
//
//   - correlation id: messages a handler produces carry the correlation id of
//     the message it handled;
//   - dead letters (when cfg.DeadLetters is set): a message whose handler
//     failed every attempt is published to cfg.DeadLetterTopic with the
//     failure reason, origin topic, handler and attempt count in its metadata
//     (MetaDeadLetterReason, MetaDeadLetterTopic, MetaDeadLetterHandler,
//     MetaAttempts), and then acknowledged;
//   - retry with exponential backoff and jitter (errors wrapping ErrPermanent
//     or ErrDecode are not retried; the wait ends early when the message
//     context is done);
//   - a timeout on each attempt: the handler's context is cancelled after
//     cfg.HandlerTimeout;
//   - recoverer: a panicking handler becomes a failed attempt whose error
//     wraps ErrPanic.
//
// Add handlers with AddConsumerHandler (a HandlerFunc adapts a typed event
// handler) and start it with Run.
func NewRouter(cfg RouterConfig) (*message.Router, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.CloseTimeout}, watermill.NewSlogLogger(cfg.Logger))
	if err != nil {
		return nil, fmt.Errorf("events: new router: %w", err)
	}
	std := standard{cfg: cfg}
	if cfg.Metrics != nil {
		if std.metrics, err = newRouterMetrics(cfg.Metrics); err != nil {
			return nil, err
		}
	}
	r.AddMiddleware(std.middleware)
	return r, nil
}

// ErrPanic wraps the value of a handler panic that the router recovered.
var ErrPanic = errors.New("events: handler panicked")

// standard is the router middleware described on NewRouter.
type standard struct {
	cfg     RouterConfig
	metrics *routerMetrics // nil without RouterConfig.Metrics
}

type routerMetrics struct {
	handled *prometheus.CounterVec
	seconds *prometheus.HistogramVec
}

// newRouterMetrics registers the router metrics on reg, reusing collectors a
// previous router registered there.
func newRouterMetrics(reg prometheus.Registerer) (*routerMetrics, error) {
	handled := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "horizons", Subsystem: "events", Name: "handled_total",
		Help: "Messages handled by router handlers, by outcome (ok, dead_letter, failed).",
	}, []string{"handler", "event_type", "outcome"})
	seconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "horizons", Subsystem: "events", Name: "handler_seconds",
		Help:    "Time spent on one delivery, all attempts and retry waits included.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 12),
	}, []string{"handler"})
	m := &routerMetrics{}
	for _, c := range []struct {
		c   prometheus.Collector
		set func(prometheus.Collector)
	}{
		{handled, func(c prometheus.Collector) { m.handled = c.(*prometheus.CounterVec) }},
		{seconds, func(c prometheus.Collector) { m.seconds = c.(*prometheus.HistogramVec) }},
	} {
		err := reg.Register(c.c)
		var are prometheus.AlreadyRegisteredError
		switch {
		case err == nil:
			c.set(c.c)
		case errors.As(err, &are):
			c.set(are.ExistingCollector)
		default:
			return nil, fmt.Errorf("events: register router metrics: %w", err)
		}
	}
	return m, nil
}

func (m *routerMetrics) observe(ctx context.Context, msg *message.Message, start time.Time, outcome string) {
	if m == nil {
		return
	}
	h := message.HandlerNameFromCtx(ctx)
	m.handled.WithLabelValues(h, msg.Metadata.Get(MetaEventType), outcome).Inc()
	m.seconds.WithLabelValues(h).Observe(time.Since(start).Seconds())
}

func (s standard) middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx := msg.Context()
		var start time.Time
		if s.metrics != nil {
			start = time.Now()
		}
		out, attempts, err := s.retry(ctx, h, msg)
		msg.SetContext(ctx) // the attempts leave their own, cancelled context
		if err == nil {
			if cid := middleware.MessageCorrelationID(msg); cid != "" {
				for _, m := range out {
					middleware.SetCorrelationID(cid, m)
				}
			}
			s.metrics.observe(ctx, msg, start, "ok")
			return out, nil
		}
		msg.Metadata.Set(MetaAttempts, strconv.Itoa(attempts))
		if s.cfg.DeadLetters == nil {
			s.metrics.observe(ctx, msg, start, "failed")
			return nil, err
		}
		msg.Metadata.Set(MetaDeadLetterReason, err.Error())
		msg.Metadata.Set(MetaDeadLetterTopic, message.SubscribeTopicFromCtx(ctx))
		msg.Metadata.Set(MetaDeadLetterHandler, message.HandlerNameFromCtx(ctx))
		msg.Metadata.Set(middleware.PoisonedSubscriberKey, message.SubscriberNameFromCtx(ctx))
		msg.Metadata.Set(MetaDeadLetterID, watermill.NewUUID())
		if perr := s.cfg.DeadLetters.Publish(s.cfg.DeadLetterTopic, msg); perr != nil {
			s.metrics.observe(ctx, msg, start, "failed")
			return nil, errors.Join(err, fmt.Errorf("events: publish %s to dead-letter topic %q: %w", msg.UUID, s.cfg.DeadLetterTopic, perr))
		}
		s.metrics.observe(ctx, msg, start, "dead_letter")
		s.cfg.Logger.Warn("events: message dead-lettered",
			"uuid", msg.UUID, "handler", message.HandlerNameFromCtx(ctx), "attempts", attempts, "err", err)
		return nil, nil
	}
}

// retry runs h until it succeeds, fails permanently, runs out of retries or
// the message context is done.
func (s standard) retry(ctx context.Context, h message.HandlerFunc, msg *message.Message) ([]*message.Message, int, error) {
	for attempt := 1; ; attempt++ {
		out, err := s.attempt(ctx, h, msg)
		if err == nil {
			return out, attempt, nil
		}
		if attempt > s.cfg.maxRetries(ctx) || errors.Is(err, ErrPermanent) || errors.Is(err, ErrDecode) {
			return nil, attempt, err
		}
		d := s.cfg.jittered(s.cfg.nominalDelay(attempt), rand.Float64())
		s.cfg.Logger.Info("events: handler failed; retrying",
			"uuid", msg.UUID, "handler", message.HandlerNameFromCtx(ctx), "attempt", attempt, "wait", d, "err", err)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, attempt, fmt.Errorf("%w (retry abandoned: %w)", err, ctx.Err())
		}
	}
}

// maxRetries is the number of retries for the handler of ctx.
func (c RouterConfig) maxRetries(ctx context.Context) int {
	if n, ok := c.MaxRetriesByHandler[message.HandlerNameFromCtx(ctx)]; ok {
		return max(n, 0)
	}
	return c.MaxRetries
}

// nominalDelay is the wait before retry n (from 1) without jitter:
// InitialInterval × Multiplier^(n-1), capped at MaxInterval.
func (c RouterConfig) nominalDelay(n int) time.Duration {
	d := float64(c.InitialInterval)
	for i := 1; i < n && d < float64(c.MaxInterval); i++ {
		d *= c.Multiplier
	}
	return min(time.Duration(d), c.MaxInterval)
}

// jittered spreads d over ±Jitter according to u in [0, 1), still capped at
// MaxInterval.
func (c RouterConfig) jittered(d time.Duration, u float64) time.Duration {
	if c.Jitter > 0 {
		d = time.Duration(float64(d) * (1 + c.Jitter*(2*u-1)))
	}
	return min(d, c.MaxInterval)
}

// RetryDelays returns the waits before each retry the configuration allows,
// before jitter (each actual wait is spread over ±Jitter of its value and
// capped at MaxInterval). With the defaults: 1s, 2s, 4s, 8s, 16s.
func (c RouterConfig) RetryDelays() ([]time.Duration, error) {
	c, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	out := make([]time.Duration, c.MaxRetries)
	for i := range out {
		out[i] = c.nominalDelay(i + 1)
	}
	return out, nil
}

// attempt runs h once with the attempt's own context and turns a panic into
// an error.
func (s standard) attempt(ctx context.Context, h message.HandlerFunc, msg *message.Message) (out []*message.Message, err error) {
	if s.cfg.HandlerTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.HandlerTimeout)
		defer cancel()
	}
	msg.SetContext(ctx)
	defer func() {
		if r := recover(); r != nil {
			s.cfg.Logger.Error("events: handler panicked", "uuid", msg.UUID, "panic", r, "stack", string(debug.Stack()))
			out, err = nil, fmt.Errorf("%w: %v", ErrPanic, r)
		}
	}()
	return h(msg)
}

// HandlerFunc handles one event. An error fails the attempt: the router
// retries it and finally dead-letters the message. The context is the
// message's, cancelled when the attempt times out.
type HandlerFunc func(ctx context.Context, e Event) error

// Watermill adapts f to a watermill handler for Router.AddConsumerHandler.
// It decodes each message with codec (nil means JSONCodec); a message that
// cannot be decoded fails with an error wrapping ErrDecode, which is not
// retried.
func (f HandlerFunc) Watermill(codec Codec) message.NoPublishHandlerFunc {
	if codec == nil {
		codec = JSONCodec{}
	}
	return func(msg *message.Message) error {
		e, err := codec.Unmarshal(msg)
		if err != nil {
			return err
		}
		return f(msg.Context(), e)
	}
}
