package main

import "github.com/cosmic-horizons/horizons/events/notify"

// The hub is the notifications consumer's Notifier (hub.Notify).
var _ notify.Notifier = (*hub)(nil)
