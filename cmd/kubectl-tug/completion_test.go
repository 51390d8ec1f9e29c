package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// complete runs the plugin's completion as kubectl_complete-tug does, the
// connection flags first and the word being completed last; it returns the
// candidates (with their descriptions) and the directive line.
func (p *plugin) complete(words ...string) (candidates []string, directive string) {
	p.t.Helper()
	var out, errOut bytes.Buffer
	args := append([]string{"__complete", "--kubeconfig", p.kubeconfig, "-n", p.ns}, words...)
	if code := execute(p.t.Context(), args, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}); code != 0 {
		p.t.Fatalf("complete %q: exit %d: %s", words, code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return lines[:len(lines)-1], lines[len(lines)-1]
}

func TestCompletion(t *testing.T) {
	p := newPlugin(t)
	p.given("web", v1alpha1.RolloutStatus{Phase: v1alpha1.PhasePaused, CurrentStepIndex: ptr.To[int32](1), CanaryWeight: 10})
	p.given("worker", v1alpha1.RolloutStatus{Phase: v1alpha1.PhaseHealthy})
	p.given("api", v1alpha1.RolloutStatus{Phase: v1alpha1.PhaseHealthy})
	p.givenPreview("web-pr-7", nil, v1alpha1.PreviewStatus{Phase: "Mirroring"})

	kc, err := clientcmd.LoadFromFile(p.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	var contexts, clusters []string
	for name := range kc.Contexts {
		contexts = append(contexts, name)
	}
	for name := range kc.Clusters {
		clusters = append(clusters, name)
	}
	slices.Sort(contexts)
	slices.Sort(clusters)

	const noFiles, noSpace = ":4", ":6" // cobra's ShellCompDirectiveNoFileComp, and with NoSpace
	for _, tc := range []struct {
		name      string
		words     []string
		want      []string
		directive string
	}{
		{"rollouts with their state", []string{"get", "rollout", "w"}, []string{"web\tPaused, step 1/2, canary 10%", "worker\tHealthy"}, noFiles},
		{"every rollout", []string{"promote", ""}, []string{"api\tHealthy", "web\tPaused, step 1/2, canary 10%", "worker\tHealthy"}, noFiles},
		{"one name only", []string{"wait", "web", ""}, nil, noFiles},
		{"history", []string{"history", "a"}, []string{"api\tHealthy"}, noFiles},
		{"rollback", []string{"rollback", "wo"}, []string{"worker\tHealthy"}, noFiles},
		{"previews", []string{"preview", "get", ""}, []string{"web-pr-7\tMirroring"}, noFiles},
		{"set image: the rollout", []string{"set", "image", "ap"}, []string{"api\tHealthy"}, noFiles},
		{"set image: its containers", []string{"set", "image", "web", ""}, []string{"app=\tnow app:2"}, noSpace},
		{"set image: a container given", []string{"set", "image", "web", "app=app:3", ""}, nil, noSpace},
		{"trigger's actions, and its required flag", []string{"trigger", ""},
			[]string{"--endpoint\tthe Receiver's URL: https://HOST/hook/NAMESPACE/NAME", "setImage", "promote", "abort", "rollback"}, noFiles},
		{"-o", []string{"list", "-o", ""}, []string{"json", "yaml", "name", "wide"}, noFiles},
		{"-n", []string{"list", "-n", "pr"}, []string{"prod"}, noFiles},
		{"--context", []string{"list", "--context", ""}, contexts, noFiles},
		{"--cluster", []string{"list", "--cluster", ""}, clusters, noFiles},
		{"--context, none such", []string{"list", "--context", "nothing-"}, nil, noFiles},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, directive := p.complete(tc.words...)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") || directive != tc.directive {
				t.Errorf("complete %q = %q %s, want %q %s", tc.words, got, directive, tc.want, tc.directive)
			}
		})
	}
}
