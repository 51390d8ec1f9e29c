// Package argocd holds Argo CD's health checks and actions for Tugboat's
// kinds; this test runs their Lua, as Argo CD does, against Rollouts in every
// state the controller writes.
package argocd_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
	"github.com/tugboatdev/tugboat/rollout/status"
)

func configMap(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("argocd-cm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(b, &cm); err != nil {
		t.Fatal(err)
	}
	return cm.Data
}

// run runs script with obj bound, in a Lua VM with the libraries Argo CD
// opens, and returns what the script returns.
func run(t *testing.T, script string, obj any) any {
	t.Helper()
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for name, open := range map[string]lua.LGFunction{lua.BaseLibName: lua.OpenBase, lua.TabLibName: lua.OpenTable,
		lua.StringLibName: lua.OpenString, lua.MathLibName: lua.OpenMath, lua.OsLibName: lua.OpenOs} {
		L.Push(L.NewFunction(open))
		L.Push(lua.LString(name))
		L.Call(1, 0)
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	L.SetGlobal("obj", toLua(L, u))
	if err := L.DoString(script); err != nil {
		t.Fatalf("lua: %v", err)
	}
	return fromLua(L.Get(-1))
}

func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		t := L.NewTable()
		for k, x := range v {
			t.RawSetString(k, toLua(L, x))
		}
		return t
	case []any:
		t := L.NewTable()
		for _, x := range v {
			t.Append(toLua(L, x))
		}
		return t
	case string:
		return lua.LString(v)
	case bool:
		return lua.LBool(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	}
	return lua.LNil
}

func fromLua(v lua.LValue) any {
	switch v := v.(type) {
	case *lua.LTable:
		if n := v.Len(); n > 0 {
			out := make([]any, 0, n)
			for i := 1; i <= n; i++ {
				out = append(out, fromLua(v.RawGetInt(i)))
			}
			return out
		}
		out := map[string]any{}
		v.ForEach(func(k, x lua.LValue) { out[k.String()] = fromLua(x) })
		return out
	case lua.LString:
		return string(v)
	case lua.LBool:
		return bool(v)
	case lua.LNumber:
		return float64(v)
	}
	return nil
}

// rolloutAt is a Rollout whose status the controller wrote for outcome.
func rolloutAt(outcome rollout.Outcome, msg string) *v1alpha1.Rollout {
	ro := &v1alpha1.Rollout{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Generation: 3}}
	status.Set(&ro.Status.Conditions, outcome, msg, 3)
	ro.Status.Phase = status.Phase(ro.Status.Conditions)
	ro.Status.ObservedGeneration = 3
	return ro
}

func TestRolloutHealth(t *testing.T) {
	script := configMap(t)["resource.customizations.health.tugboat.dev_Rollout"]
	for _, tt := range []struct {
		outcome rollout.Outcome
		want    string
	}{
		{rollout.Initializing, "Progressing"},
		{rollout.Healthy, "Healthy"},
		{rollout.Started, "Progressing"},
		{rollout.WaitingForCanary, "Progressing"},
		{rollout.Holding, "Progressing"},
		{rollout.WaitingForAnalysis, "Progressing"},
		{rollout.Promoting, "Progressing"},
		{rollout.HandingBack, "Progressing"},
		{rollout.OutsideWindow, "Progressing"},
		{rollout.WaitingForPromotion, "Suspended"},
		{rollout.PausedByUser, "Suspended"},
		{rollout.AbortedByUser, "Degraded"},
		{rollout.ProgressDeadlineExceeded, "Degraded"},
		{rollout.AnalysisFailed, "Degraded"},
		{rollout.InvalidSpec, "Degraded"},
		{rollout.TargetNotFound, "Degraded"},
	} {
		t.Run(string(tt.outcome), func(t *testing.T) {
			hs := run(t, script, rolloutAt(tt.outcome, "because "+string(tt.outcome))).(map[string]any)
			if hs["status"] != tt.want || hs["message"] != "because "+string(tt.outcome) {
				t.Errorf("health %v, want %s with the condition's message", hs, tt.want)
			}
		})
	}
	t.Run("a spec the controller has not seen yet", func(t *testing.T) {
		ro := rolloutAt(rollout.Healthy, "")
		ro.Generation = 4
		if hs := run(t, script, ro).(map[string]any); hs["status"] != "Progressing" {
			t.Errorf("health %v", hs)
		}
	})
	t.Run("no status yet", func(t *testing.T) {
		if hs := run(t, script, &v1alpha1.Rollout{}).(map[string]any); hs["status"] != "Progressing" {
			t.Errorf("health %v", hs)
		}
	})
}

func TestAnalysisRunHealth(t *testing.T) {
	script := configMap(t)["resource.customizations.health.tugboat.dev_AnalysisRun"]
	for phase, want := range map[argo.AnalysisPhase]string{
		"": "Progressing", argo.AnalysisPhasePending: "Progressing", argo.AnalysisPhaseRunning: "Progressing",
		argo.AnalysisPhaseSuccessful: "Healthy", argo.AnalysisPhaseFailed: "Degraded", argo.AnalysisPhaseError: "Degraded",
		argo.AnalysisPhaseInconclusive: "Suspended",
	} {
		ar := &v1alpha1.AnalysisRun{Status: v1alpha1.AnalysisRunStatus{Phase: phase, Message: "m"}}
		if hs := run(t, script, ar).(map[string]any); hs["status"] != want {
			t.Errorf("phase %q: health %v, want %s", phase, hs, want)
		}
	}
}

// actions are the Rollout's actions as Argo CD reads them.
type actions struct {
	Discovery   string `json:"discovery.lua"`
	Definitions []struct {
		Name   string `json:"name"`
		Action string `json:"action.lua"`
	} `json:"definitions"`
}

func TestRolloutActions(t *testing.T) {
	var a actions
	if err := yaml.UnmarshalStrict([]byte(configMap(t)["resource.customizations.actions.tugboat.dev_Rollout"]), &a); err != nil {
		t.Fatal(err)
	}
	enabled := func(ro *v1alpha1.Rollout) []string {
		var on []string
		for name, v := range run(t, a.Discovery, ro).(map[string]any) {
			if !v.(map[string]any)["disabled"].(bool) {
				on = append(on, name)
			}
		}
		return on
	}
	atRest := rolloutAt(rollout.Healthy, "")
	paused := rolloutAt(rollout.WaitingForPromotion, "")
	paused.Status.CanaryRevision = "c1"
	paused.Annotations = map[string]string{v1alpha1.AnnotationPaused: "true"}
	aborted := rolloutAt(rollout.AnalysisFailed, "")
	aborted.Status.CanaryRevision = "c1"
	aborted.Status.Abort = &v1alpha1.RolloutAbort{Reason: "AnalysisFailed", Message: "m"}
	for _, tt := range []struct {
		name string
		ro   *v1alpha1.Rollout
		want string
	}{
		{"at rest", atRest, "pause"},
		{"mid-rollout, paused by a person", paused, "abort promote promote-full resume"},
		{"aborted", aborted, "pause retry"},
	} {
		got := enabled(tt.ro)
		slices.Sort(got)
		if strings.Join(got, " ") != tt.want {
			t.Errorf("%s: actions %v, want %s", tt.name, got, tt.want)
		}
	}

	annotations := func(name string, ro *v1alpha1.Rollout) map[string]any {
		for _, d := range a.Definitions {
			if d.Name == name {
				out := run(t, d.Action, ro).(map[string]any)
				md := out["metadata"].(map[string]any)
				if md["annotations"] == nil {
					return map[string]any{}
				}
				return md["annotations"].(map[string]any)
			}
		}
		t.Fatalf("no action %s", name)
		return nil
	}
	for name, key := range map[string]string{"promote": v1alpha1.AnnotationPromote, "promote-full": v1alpha1.AnnotationPromoteFull,
		"abort": v1alpha1.AnnotationAbort, "retry": v1alpha1.AnnotationRetry} {
		if v, _ := annotations(name, rolloutAt(rollout.Healthy, ""))[key].(string); !strings.HasSuffix(v, "Z") || len(v) != len("2026-11-24T10:30:00Z") {
			t.Errorf("%s: %s = %q, want a new UTC timestamp", name, key, v)
		}
	}
	if v := annotations("pause", atRest)[v1alpha1.AnnotationPaused]; v != "true" {
		t.Errorf("pause: %v", v)
	}
	if _, ok := annotations("resume", paused)[v1alpha1.AnnotationPaused]; ok {
		t.Error("resume left the paused annotation")
	}
}
