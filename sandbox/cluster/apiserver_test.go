package cluster_test

import (
	"testing"

	"github.com/tugboatdev/tugboat/sandbox/cluster"
)

func TestAPIServerInstallsCRDs(t *testing.T) {
	env := cluster.Start(t)
	_ = env
}
