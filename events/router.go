package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
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
	// in this delivery.
	MetaAttempts = "attempts"
)

// RouterConfig configures NewRouter. The zero value means the defaults named
// on each field.
type RouterConfig struct {
	// MaxRetries is the number of retries after the first attempt; zero
	// means DefaultMaxRetries, a negative value means no retries.
	MaxRetries int
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

// NewRouter returns a watermill Router with the standard middleware, from the
// outermost in:
//
//   - correlation id: messages a handler produces carry the correlation id of
//     the message it handled;
//   - dead letters (when cfg.DeadLetters is set): a message whose handler
//     failed every attempt is published to cfg.DeadLetterTopic with the
//     failure reason, origin topic, handler and attempt count in its metadata
//     (MetaDeadLetterReason, MetaDeadLetterTopic, MetaDeadLetterHandler,
//     MetaAttempts), and then acknowledged;
//   - retry with exponential backoff and jitter (errors wrapping ErrPermanent
//     or ErrDecode are not retried);
//   - a timeout on each attempt;
//   - recoverer: a panicking handler becomes a failed attempt.
//
// Add handlers with AddConsumerHandler (a HandlerFunc adapts a typed event
// handler) and start it with Run.
func NewRouter(cfg RouterConfig) (*message.Router, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	logger := watermill.NewSlogLogger(cfg.Logger)
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.CloseTimeout}, logger)
	if err != nil {
		return nil, fmt.Errorf("events: new router: %w", err)
	}
	r.AddMiddleware(middleware.CorrelationID)
	if cfg.DeadLetters != nil {
		pq, err := middleware.PoisonQueue(cfg.DeadLetters, cfg.DeadLetterTopic)
		if err != nil {
			return nil, fmt.Errorf("events: dead-letter topic %q: %w", cfg.DeadLetterTopic, err)
		}
		r.AddMiddleware(pq)
	}
	r.AddMiddleware(restoreContext)
	r.AddMiddleware(middleware.Retry{
		MaxRetries:          cfg.MaxRetries,
		InitialInterval:     cfg.InitialInterval,
		MaxInterval:         cfg.MaxInterval,
		Multiplier:          cfg.Multiplier,
		RandomizationFactor: cfg.Jitter,
		ResetContextOnRetry: true,
		ShouldRetry: func(p middleware.RetryParams) bool {
			return !errors.Is(p.Err, ErrPermanent) && !errors.Is(p.Err, ErrDecode)
		},
		Logger: logger,
	}.Middleware)
	r.AddMiddleware(countAttempts)
	if cfg.HandlerTimeout > 0 {
		r.AddMiddleware(middleware.Timeout(cfg.HandlerTimeout))
	}
	r.AddMiddleware(middleware.Recoverer)
	return r, nil
}

// restoreContext gives the message back the context it arrived with once
// the attempts are over: the timeout middleware leaves it holding the last
// attempt's cancelled context, which would make the dead-letter publish (and
// any transport that honours the message context) fail.
func restoreContext(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx := msg.Context()
		out, err := h(msg)
		msg.SetContext(ctx)
		return out, err
	}
}

// countAttempts runs inside Retry, so it sees every attempt of one delivery.
func countAttempts(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		n, _ := strconv.Atoi(msg.Metadata.Get(MetaAttempts))
		msg.Metadata.Set(MetaAttempts, strconv.Itoa(n+1))
		return h(msg)
	}
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
