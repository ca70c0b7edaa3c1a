package kafkabus_test

import (
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cosmic-horizons/horizons/events/kafkabus"
)

func TestParseURL(t *testing.T) {
	brokers, cfg, err := kafkabus.ParseURL("kafka://a:9092,b:9093?group=audit&version=3.9.0&partitions=12&replication=3&nack_resend=250ms&start=newest&client_id=ref",
		&kafkabus.Config{ClientID: "base"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(brokers, " ") != "a:9092 b:9093" || cfg.ConsumerGroup != "audit" || cfg.Version != sarama.V3_9_0_0 ||
		cfg.Partitions != 12 || cfg.ReplicationFactor != 3 || cfg.NackResendSleep != 250*time.Millisecond ||
		!cfg.StartFromNewest || cfg.ClientID != "ref" {
		t.Fatalf("brokers %v config %+v", brokers, cfg)
	}
	bad := map[string]string{
		"amqp://x:5672":                   `scheme is "amqp"`,
		"kafka://":                        "names no broker",
		"kafka://u:secret@h:9092":         "carries credentials",
		"kafka://h:9092?partitions=0":     `partitions="0"`,
		"kafka://h:9092?version=banana":   `version="banana"`,
		"kafka://h:9092?nack_resend=soon": `nack_resend="soon"`,
		"kafka://h:9092?start=middle":     `start="middle"`,
		"kafka://h:9092?colour=blue":      `"colour"`,
		"kafka://u:secret@h:9092/%zz":     "does not parse",
		"kafka://h:9092?replication=-1":   `replication="-1"`,
	}
	for raw, want := range bad {
		_, _, err := kafkabus.ParseURL(raw, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseURL(%q) = %v, want an error mentioning %s", raw, err, want)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseURL(%q) error leaks the password: %v", raw, err)
		}
	}
}

func TestOpenURL(t *testing.T) {
	c := newCluster(t)
	bus, err := kafkabus.OpenURL("kafka://"+strings.Join(c.ListenAddrs(), ",")+"?group=url-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}
