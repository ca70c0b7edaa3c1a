package events

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// DeadLetter is a message the router gave up on, as found on the dead-letter
// topic: the original message with the failure recorded in its metadata.
type DeadLetter struct {
	// Message is the dead-lettered message as received.
	Message *message.Message
	// Event is the decoded event; its zero value when the message could not
	// be decoded (see DecodeErr).
	Event Event
	// DecodeErr is why the message could not be decoded, if it could not.
	DecodeErr error
	// Reason is the error of the last attempt.
	Reason string
	// Topic is the topic the message was consumed from.
	Topic string
	// Handler is the name of the handler that failed.
	Handler string
	// Attempts is how many times the handler ran.
	Attempts int
}

// ParseDeadLetter reads the failure metadata NewRouter writes on a dead
// letter and decodes its event with codec (nil means JSONCodec). A message
// without the dead-letter metadata is an error; an event that does not
// decode is not, since undecodable messages are dead-lettered too: it is
// reported in DecodeErr.
func ParseDeadLetter(msg *message.Message, codec Codec) (DeadLetter, error) {
	if codec == nil {
		codec = JSONCodec{}
	}
	dl := DeadLetter{
		Message: msg,
		Reason:  msg.Metadata.Get(MetaDeadLetterReason),
		Topic:   msg.Metadata.Get(MetaDeadLetterTopic),
		Handler: msg.Metadata.Get(MetaDeadLetterHandler),
	}
	if dl.Reason == "" || dl.Topic == "" {
		return DeadLetter{}, fmt.Errorf("events: message %s is not a dead letter: metadata %s or %s is missing",
			msg.UUID, MetaDeadLetterReason, MetaDeadLetterTopic)
	}
	if a := msg.Metadata.Get(MetaAttempts); a != "" {
		n, err := strconv.Atoi(a)
		if err != nil {
			return DeadLetter{}, fmt.Errorf("events: dead letter %s: metadata %s is %q, not a number", msg.UUID, MetaAttempts, a)
		}
		dl.Attempts = n
	}
	dl.Event, dl.DecodeErr = codec.Unmarshal(msg)
	return dl, nil
}

// Replay publishes the dead-lettered message again to the topic it was
// consumed from, without the failure metadata, so its consumers get a fresh
// set of attempts. The message keeps its UUID and event id: consumers that
// already applied it (a consumer that did not fail) skip it by event id.
func (dl DeadLetter) Replay(pub message.Publisher) error {
	if pub == nil {
		return errors.New("events: Replay: publisher is nil")
	}
	if dl.Message == nil || dl.Topic == "" {
		return errors.New("events: Replay: not a parsed dead letter (use ParseDeadLetter)")
	}
	m := message.NewMessage(dl.Message.UUID, dl.Message.Payload)
	for k, v := range dl.Message.Metadata {
		switch k {
		case MetaDeadLetterReason, MetaDeadLetterTopic, MetaDeadLetterHandler, MetaAttempts,
			MetaDeadLetterID, middleware.PoisonedSubscriberKey:
		default:
			m.Metadata.Set(k, v)
		}
	}
	if err := pub.Publish(dl.Topic, m); err != nil {
		return fmt.Errorf("events: replay dead letter %s to %q: %w", dl.Message.UUID, dl.Topic, err)
	}
	return nil
}
