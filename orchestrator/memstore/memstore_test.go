package memstore_test

import (
	"testing"

	"github.com/cosmic-horizons/horizons/orchestrator"
	"github.com/cosmic-horizons/horizons/orchestrator/memstore"
	"github.com/cosmic-horizons/horizons/orchestrator/orchestratortest"
)

func TestConformance(t *testing.T) {
	orchestratortest.RunStore(t, func(t *testing.T) orchestrator.Store { return memstore.New(nil) })
}
