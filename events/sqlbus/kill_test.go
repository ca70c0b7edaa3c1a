package sqlbus_test

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/cosmic-horizons/horizons/events/bustest"
	"github.com/cosmic-horizons/horizons/events/sqlbus"
)

func killHarness(db *sql.DB, dialect, topic string) bustest.KillHarness {
	mk := func(t *testing.T, group string) *sqlbus.Transport {
		tr, err := sqlbus.New(db, &sqlbus.Config{Dialect: dialect, ConsumerGroup: group, PollInterval: 10 * time.Millisecond, BatchSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tr.Close() })
		return tr
	}
	return bustest.KillHarness{
		Publisher:  func(t *testing.T) message.Publisher { return mk(t, "publisher").Publisher() },
		Subscriber: func(t *testing.T, group string) message.Subscriber { return mk(t, group).Subscriber() },
		Topic:      topic,
		Ordered:    true,
	}
}

// A consumer killed mid-stream on PostgreSQL loses nothing, and its
// successor in the same group applies nothing twice.
func TestKillConsumerMidStreamPostgres(t *testing.T) {
	db := postgres(t)
	prefix := fmt.Sprintf("hzk%d_", time.Now().UnixNano()%1e9)
	t.Cleanup(func() { dropTables(t, db, prefix) })
	bustest.KillConsumerMidStream(t, killHarness(db, sqlbus.Postgres, prefix+"kill"))
}
