package kafkabus

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/cosmic-horizons/horizons/events"
)

// Scheme is the URL scheme of this transport.
const Scheme = "kafka"

// ParseURL reads a transport URL of the form
//
//	kafka://host1:9092,host2:9092?group=audit&version=3.6.0&partitions=8&nack_resend=250ms&start=newest
//
// into brokers and a Config built on base (nil means the zero Config; base
// is not modified). Every query parameter is optional. Credentials do not
// belong in the URL: configure SASL through Config.Sarama. An error names the
// offending part and never repeats a password.
func ParseURL(raw string, base *Config) ([]string, *Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("kafkabus: URL does not parse: %v", redactErr(err))
	}
	if u.Scheme != Scheme {
		return nil, nil, fmt.Errorf("kafkabus: URL scheme is %q, want %q", u.Scheme, Scheme)
	}
	if u.User != nil {
		return nil, nil, fmt.Errorf("kafkabus: URL %s carries credentials; configure SASL through Config.Sarama instead", u.Redacted())
	}
	var brokers []string
	for _, h := range strings.Split(u.Host, ",") {
		if h = strings.TrimSpace(h); h != "" {
			brokers = append(brokers, h)
		}
	}
	if len(brokers) == 0 {
		return nil, nil, fmt.Errorf("kafkabus: URL %s names no broker", u.Redacted())
	}
	cfg := Config{}
	if base != nil {
		cfg = *base
	}
	q := u.Query()
	for key := range q {
		v := q.Get(key)
		switch key {
		case "group":
			cfg.ConsumerGroup = v
		case "client_id":
			cfg.ClientID = v
		case "version":
			ver, err := sarama.ParseKafkaVersion(v)
			if err != nil {
				return nil, nil, fmt.Errorf("kafkabus: URL parameter version=%q: %v", v, err)
			}
			cfg.Version = ver
		case "partitions":
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n <= 0 {
				return nil, nil, fmt.Errorf("kafkabus: URL parameter partitions=%q, want a positive integer", v)
			}
			cfg.Partitions = int32(n)
		case "replication":
			n, err := strconv.ParseInt(v, 10, 16)
			if err != nil || n <= 0 {
				return nil, nil, fmt.Errorf("kafkabus: URL parameter replication=%q, want a positive integer", v)
			}
			cfg.ReplicationFactor = int16(n)
		case "nack_resend":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return nil, nil, fmt.Errorf("kafkabus: URL parameter nack_resend=%q, want a duration such as 250ms", v)
			}
			cfg.NackResendSleep = d
		case "start":
			switch v {
			case "oldest":
				cfg.StartFromNewest = false
			case "newest":
				cfg.StartFromNewest = true
			default:
				return nil, nil, fmt.Errorf("kafkabus: URL parameter start=%q, want oldest or newest", v)
			}
		default:
			return nil, nil, fmt.Errorf("kafkabus: unknown URL parameter %q", key)
		}
	}
	return brokers, &cfg, nil
}

// OpenURL returns a Bus over a Transport configured by ParseURL(raw, base).
func OpenURL(raw string, base *Config) (*events.Bus, error) {
	brokers, cfg, err := ParseURL(raw, base)
	if err != nil {
		return nil, err
	}
	return NewBus(brokers, cfg)
}

// redactErr drops the URL text from a url.Error, which may hold a password.
func redactErr(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
