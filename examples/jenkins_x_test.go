package examples_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// pipelineRun is the part of a Tekton v1 PipelineRun with an inline
// pipeline that examples/ci/jenkins-x uses, decoded strictly.
type pipelineRun struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Params       []pipelineParam `json:"params"`
		PipelineSpec struct {
			Params []struct {
				Name        string  `json:"name"`
				Description string  `json:"description"`
				Default     *string `json:"default"`
			} `json:"params"`
			Tasks []struct {
				Name     string          `json:"name"`
				RunAfter []string        `json:"runAfter"`
				Params   []pipelineParam `json:"params"`
				TaskRef  *struct {
					Name string `json:"name"`
				} `json:"taskRef"`
				TaskSpec *taskSpec `json:"taskSpec"`
			} `json:"tasks"`
		} `json:"pipelineSpec"`
		TaskRunTemplate struct {
			ServiceAccountName string `json:"serviceAccountName"`
		} `json:"taskRunTemplate"`
		Timeouts struct {
			Pipeline string `json:"pipeline"`
		} `json:"timeouts"`
	} `json:"spec"`
}

type pipelineParam struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

var pipelineParamRef = regexp.MustCompile(`\$\(params\.([a-z0-9-]+)\)`)

// taskParams are the params the pipeline passes to its task named name,
// with the PipelineRun's values (or the pipeline's defaults) in them.
func (pr *pipelineRun) taskParams(t *testing.T, name string) map[string]string {
	t.Helper()
	values := map[string]string{}
	for _, p := range pr.Spec.PipelineSpec.Params {
		if p.Default != nil {
			values[p.Name] = *p.Default
		}
	}
	for _, p := range pr.Spec.Params {
		values[p.Name] = p.Value
	}
	for _, tk := range pr.Spec.PipelineSpec.Tasks {
		if tk.Name != name {
			continue
		}
		out := map[string]string{}
		for _, p := range tk.Params {
			var missing error
			out[p.Name] = pipelineParamRef.ReplaceAllStringFunc(p.Value, func(m string) string {
				ref := pipelineParamRef.FindStringSubmatch(m)[1]
				v, ok := values[ref]
				if !ok {
					missing = fmt.Errorf("task %s param %s: no pipeline param %s", name, p.Name, ref)
				}
				return v
			})
			if missing != nil {
				t.Fatal(missing)
			}
		}
		return out
	}
	t.Fatalf("no task %s in the pipeline", name)
	return nil
}

// readPipelineRun decodes release.yaml strictly and returns it with its
// inline task named name as a Task, checked as readTask checks a Task.
func readPipelineRun(t *testing.T, path, name string) (*pipelineRun, *task) {
	t.Helper()
	var pr pipelineRun
	decodeFile(t, path, &pr, true)
	if pr.APIVersion != "tekton.dev/v1" || pr.Kind != "PipelineRun" {
		t.Fatalf("%s: %s %s, want a tekton.dev/v1 PipelineRun", path, pr.APIVersion, pr.Kind)
	}
	for _, tk := range pr.Spec.PipelineSpec.Tasks {
		if tk.Name != name || tk.TaskSpec == nil {
			continue
		}
		inline := &task{APIVersion: "tekton.dev/v1", Kind: "Task", Spec: *tk.TaskSpec}
		inline.Metadata.Name = name
		if len(inline.Spec.Steps) != 1 || strings.Contains(inline.Spec.Steps[0].Script, "$(params.") {
			t.Fatalf("%s: task %s: want one step taking its params through env", filepath.Base(path), name)
		}
		return &pr, inline
	}
	t.Fatalf("%s: no inline task %s", path, name)
	return nil, nil
}
