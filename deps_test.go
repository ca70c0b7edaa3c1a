package horizons_test

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/cosmic-horizons/horizons"

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestDependencyRules enforces the one-way rules of DESIGN.md.
func TestDependencyRules(t *testing.T) {
	heavy := []string{"github.com/IBM/sarama", "github.com/rabbitmq/amqp091-go", "github.com/jackc/pgx", "github.com/redis/go-redis", "modernc.org/sqlite", "github.com/lib/pq", "github.com/hamba/avro", "github.com/twmb/franz-go", "github.com/minio/minio-go"}
	rules := map[string][]string{
		"./ephemeris":    {mod + "/orchestrator", mod + "/events", mod + "/backends", mod + "/agents", mod + "/cache"},
		"./agents":       {mod + "/orchestrator", mod + "/events", mod + "/backends"},
		"./cache":        {mod + "/orchestrator", mod + "/events", mod + "/backends"},
		"./backends":     {mod + "/orchestrator", mod + "/events"},
		"./events":       {mod + "/orchestrator", mod + "/backends", mod + "/agents"},
		"./orchestrator": {mod + "/events/", mod + "/backends/", mod + "/orchestrator/"},
	}
	for pkg, banned := range rules {
		for _, d := range deps(t, pkg) {
			for _, b := range banned {
				if strings.HasSuffix(b, "/") && strings.HasPrefix(d, b) || d == b || strings.HasPrefix(d, b+"/") && !strings.HasSuffix(b, "/") {
					t.Errorf("%s depends on %s, which DESIGN.md forbids", pkg, d)
				}
			}
			for _, h := range heavy {
				if strings.HasPrefix(d, h) {
					t.Errorf("%s compiles in the heavy client %s", pkg, d)
				}
			}
		}
	}
}
