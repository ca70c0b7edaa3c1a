package main

import (
	"context"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/notify"
)

var _ notify.Notifier = (*hub)(nil)

// Notify implements notify.Notifier: the notifications consumer hands the
// hub each job event once, and the hub fans it out to the stream clients
// allowed to see it (the owner's, and administrators'). It never blocks on
// a client.
func (h *hub) Notify(ctx context.Context, owner string, ev events.Event) error {
	h.dispatch(ev)
	return nil
}
