// Package crash is the crash-safety tier: the controller binary runs Rollouts
// on a kwok cluster and is killed with SIGKILL at random instants, again and
// again, while a watcher records every version of the Rollouts, primaries and
// VirtualServices and checks afterwards that no kill cost progress or served
// the wrong version.
//
// `make test` runs a short tier (TUGBOAT_CRASH_KILLS, default 40); `make
// crash` a longer one.
package crash

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tugboatdev/tugboat/sandbox/cluster"
	"github.com/tugboatdev/tugboat/sandbox/process"
	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

var (
	kube *cluster.Cluster
	bin  string
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	log.SetLogger(logr.Discard())
	dir, err := os.MkdirTemp("", "tugboat-crash-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "tugboat")
	build := exec.Command("go", "build", "-o", bin, "./cmd/tugboat")
	build.Dir = toolchain.Root()
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("build the controller: %w\n%s", err, out)
	}
	if kube, err = cluster.NewCluster(context.Background(), cluster.ClusterOptions{Nodes: 2, Dir: dir}); err != nil {
		return 0, err
	}
	defer kube.Stop()
	return m.Run(), nil
}

// The controller is killed at random instants while rollouts progress,
// abort, retry and promote; after the last kill it finishes them all.
func TestKilledAtRandomInstants(t *testing.T) {
	kills := 40
	if v := os.Getenv("TUGBOAT_CRASH_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("TUGBOAT_CRASH_KILLS=%q: want a positive number", v)
		}
		kills = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("TUGBOAT_CRASH_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("TUGBOAT_CRASH_SEED=%q: %v", v, err)
		}
		seed = s
	}
	t.Logf("seed %d (TUGBOAT_CRASH_SEED reruns it), %d kills", seed, kills)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	start := time.Now()

	w := given(t, "crash", 6)
	watch := w.watch()
	drive := w.drive(rng)

	logDir := t.TempDir()
	for i := range kills {
		ctrl := w.startController(logDir, i)
		// A random instant: mid-start, mid-reconcile, mid-pause.
		instant := time.Duration(200+rng.IntN(2300)) * time.Millisecond
		select {
		case <-t.Context().Done():
			return
		case <-time.After(instant):
		}
		ctrl.kill()
	}
	drive.stop()
	ctrl := w.startController(logDir, kills)
	defer ctrl.stop()
	w.allAtRest(3 * time.Minute)
	ctrl.stop()
	v := watch.check()
	rolledBack := 0
	if ros, err := w.rollouts(t.Context()); err == nil {
		for _, ro := range ros {
			for _, n := range ro.Status.Rollbacks {
				rolledBack += int(n.Requested)
			}
		}
	}
	t.Logf("%d kills survived in %s: %d releases promoted, %d aborts, %d retries, %d rollbacks asked for and %d made, %d versions of Rollouts, primaries and VirtualServices checked, %d violations",
		kills, time.Since(start).Round(time.Second), drive.promoted(), drive.aborts, drive.retries, drive.rollbacks, rolledBack, watch.versions(), len(v))
	for _, msg := range v {
		t.Error(msg)
	}
	if drive.promoted() == 0 {
		t.Error("no release was promoted: the tier tested nothing")
	}
}

// controller is one run of the controller binary.
type controller struct {
	t *testing.T
	p *process.Process
}

func (w *world) startController(logDir string, i int) *controller {
	w.t.Helper()
	p, err := process.Start(fmt.Sprintf("tugboat-%d", i), bin, []string{
		"--kubeconfig=" + kube.KubeConfigPath,
		"--leader-elect=false",
		"--metrics-address=0",
		"--health-address=0",
		"--log-format=text",
		"--log-level=error",
	}, logDir)
	if err != nil {
		w.t.Fatal(err)
	}
	return &controller{t: w.t, p: p}
}

// kill ends the controller with SIGKILL, as an OOM kill or a node loss would.
func (c *controller) kill() {
	c.t.Helper()
	if err := c.p.Kill(); err != nil {
		c.t.Fatal(err)
	}
}

func (c *controller) stop() {
	if err := c.p.Stop(10 * time.Second); err != nil {
		c.t.Log(err)
	}
}
