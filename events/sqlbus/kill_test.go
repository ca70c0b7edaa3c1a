package sqlbus_test

import (
	"context"
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

// Lag counts what a group has not acknowledged yet.
func TestLag(t *testing.T) {
	for _, tc := range []struct {
		name    string
		db      func(t *testing.T) *sql.DB
		dialect string
	}{
		{"sqlite", sqliteDB, sqlbus.SQLite},
		{"postgres", postgres, sqlbus.Postgres},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := tc.db(t)
			prefix := fmt.Sprintf("hzl%d_", time.Now().UnixNano()%1e9)
			if tc.dialect == sqlbus.Postgres {
				t.Cleanup(func() { dropTables(t, db, prefix) })
			}
			topic := prefix + "lag"
			ctx := context.Background()
			if n, err := sqlbus.Lag(ctx, db, tc.dialect, "g", topic); err != nil || n != 0 {
				t.Fatalf("no tables yet: %d %v", n, err)
			}
			tr, err := sqlbus.New(db, &sqlbus.Config{Dialect: tc.dialect, ConsumerGroup: "g", PollInterval: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if err := tr.SubscribeInitialize(topic); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 5; i++ {
				if err := tr.Publish(topic, message.NewMessage(fmt.Sprint(i), []byte("{}"))); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := sqlbus.Lag(ctx, db, tc.dialect, "g", topic); err != nil || n != 5 {
				t.Fatalf("before consuming: %d %v", n, err)
			}
			sctx, cancel := context.WithCancel(ctx)
			defer cancel()
			ch, err := tr.Subscribe(sctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			// The offset is stored once the whole batch is acked.
			for i := 0; i < 5; i++ {
				(<-ch).Ack()
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				n, err := sqlbus.Lag(ctx, db, tc.dialect, "g", topic)
				if err == nil && n == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after every ack: lag %d %v", n, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if _, err := sqlbus.Lag(ctx, db, "mysql", "g", topic); err == nil {
				t.Fatal("unknown dialect accepted")
			}
		})
	}
}
