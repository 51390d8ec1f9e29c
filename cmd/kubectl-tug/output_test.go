package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
)

// decodeStrict reads out, printed with -o format, into v; a field v's type
// does not have is an error.
func decodeStrict(format, out string, v any) error {
	if format == "yaml" {
		return yaml.UnmarshalStrict([]byte(out), v)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

// printed is a Rollout as the API server holds it now, as -o prints it:
// apiVersion and kind set, managedFields left out.
func (p *plugin) printed(name string) *v1alpha1.Rollout {
	ro := p.rolloutObj(name)
	ro.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Rollout"))
	ro.ManagedFields = nil
	return ro
}

// TestStructuredOutput runs each verb that prints with -o json and -o yaml,
// and decodes what it printed into the type it prints, strictly.
func TestStructuredOutput(t *testing.T) {
	p := newPlugin(t)
	api, rev := p.given("api", v1alpha1.RolloutStatus{Phase: v1alpha1.PhaseHealthy, StableRevision: "h1", Conditions: cond("Healthy", true),
		Rollbacks: []v1alpha1.RevisionRollbacks{{Revision: "x0", Images: []string{"app:0"}, Aborted: 1}}})
	// api's own revision is its target's: wait finds it healthy there.
	api.Status.StableRevision = rev
	if err := p.env.Client.Status().Update(t.Context(), api); err != nil {
		t.Fatal(err)
	}
	web, _ := p.given("web", v1alpha1.RolloutStatus{Phase: v1alpha1.PhasePaused, StableRevision: "h1", CanaryRevision: rev,
		CurrentStepIndex: ptr.To[int32](1), CanaryWeight: 10, Message: "paused at step 1 until promoted >= 0.99", Conditions: cond("WaitingForPromotion", false),
		Rollbacks: []v1alpha1.RevisionRollbacks{{Revision: "h0", Images: []string{"app:0"}, Aborted: 2, Requested: 1}}})
	p.given("img", v1alpha1.RolloutStatus{})
	p.record(web, 1, "h0", "app:0", map[string]string{v1alpha1.AnnotationImages: "app:0", v1alpha1.AnnotationPromotedBy: "initial"}, true)
	p.record(web, 2, "h1", "app:1", map[string]string{v1alpha1.AnnotationImages: "app:1", v1alpha1.AnnotationPromotedBy: "steps",
		v1alpha1.AnnotationAnalysis: "success-rate 0.999 >= 0.99"}, true)

	for _, tc := range []struct {
		name string
		// args are the verb's; FORMAT in one stands for the -o format.
		args []string
		code int
		// got is a new value of the type the verb prints; want is what it
		// should hold, read once the verb has run.
		got  func() any
		want func(t *testing.T, format string) any
	}{{
		name: "get prints the Rollout",
		args: []string{"get", "rollout", "web"},
		got:  func() any { return &v1alpha1.Rollout{} },
		want: func(*testing.T, string) any { return p.printed("web") },
	}, {
		name: "list prints a List of the Rollouts",
		args: []string{"list"},
		got:  func() any { return &v1alpha1.RolloutList{} },
		want: func(*testing.T, string) any {
			return &v1alpha1.RolloutList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"},
				Items: []v1alpha1.Rollout{*p.printed("api"), *p.printed("img"), *p.printed("web")}}
		},
	}, {
		name: "promote prints the Rollout as annotated",
		args: []string{"promote", "web"},
		got:  func() any { return &v1alpha1.Rollout{} },
		want: func(t *testing.T, _ string) any {
			ro := p.printed("web")
			if ro.Annotations[v1alpha1.AnnotationPromote] == "" {
				t.Errorf("promote wrote no %s", v1alpha1.AnnotationPromote)
			}
			return ro
		},
	}, {
		name: "history prints the revisions, newest first",
		args: []string{"history", "web"},
		got:  func() any { return &[]revision{} },
		want: func(*testing.T, string) any {
			return &[]revision{
				{Number: 2, Hash: "h1", Images: []string{"app:1"}, PromotedBy: "steps", Analysis: "success-rate 0.999 >= 0.99", Serving: true},
				{Number: 1, Hash: "h0", Images: []string{"app:0"}, PromotedBy: "initial", Aborted: 2, Requested: 1},
			}
		},
	}, {
		name: "rollbacks prints the images with their counts",
		args: []string{"rollbacks"},
		got:  func() any { return &[]rolledBackImage{} },
		want: func(*testing.T, string) any {
			return &[]rolledBackImage{{Image: "app:0", Rollouts: 2, Aborted: 3, Requested: 1, In: []string{"prod/api", "prod/web"}}}
		},
	}, {
		name: "wait prints a healthy result",
		args: []string{"wait", "api", "--timeout", "20s"},
		got:  func() any { return &waitResult{} },
		want: func(*testing.T, string) any {
			return &waitResult{Name: "api", Namespace: p.ns, Result: "Healthy", ExitCode: exitHealthy, WantRevision: rev,
				StableRevision: rev, Phase: string(v1alpha1.PhaseHealthy), Reason: "Healthy"}
		},
	}, {
		name: "wait keeps its exit code for a paused rollout",
		args: []string{"wait", "web", "--timeout", "20s"},
		code: exitPaused,
		got:  func() any { return &waitResult{} },
		want: func(*testing.T, string) any {
			s := p.rolloutObj("web").Status
			return &waitResult{Name: "web", Namespace: p.ns, Result: "Paused", ExitCode: exitPaused, WantRevision: rev,
				StableRevision: s.StableRevision, CanaryRevision: s.CanaryRevision, Phase: string(s.Phase), Reason: "WaitingForPromotion", Message: s.Message}
		},
	}, {
		name: "set image prints the target, revision and images",
		args: []string{"set", "image", "img", "app=app:FORMAT"},
		got:  func() any { return &setImageResult{} },
		want: func(t *testing.T, format string) any {
			d := p.deployment("img")
			if got := d.Spec.Template.Spec.Containers[0].Image; got != "app:"+format {
				t.Errorf("image %s, want app:%s", got, format)
			}
			return &setImageResult{Rollout: "img", Namespace: p.ns, Deployment: "img", Revision: rollout.Revision(d.Spec.Template),
				Containers: []containerImage{{Container: "app", Image: "app:" + format, Changed: true}}}
		},
	}} {
		for _, format := range []string{"json", "yaml"} {
			t.Run(tc.name+" -o "+format, func(t *testing.T) {
				args := slices.Clone(tc.args)
				for i := range args {
					args[i] = strings.ReplaceAll(args[i], "FORMAT", format)
				}
				code, out, errOut := p.runApart(append(args, "-o", format)...)
				if code != tc.code {
					t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
				}
				got := tc.got()
				if err := decodeStrict(format, out, got); err != nil {
					t.Fatalf("decode into %T: %v\n%s", got, err, out)
				}
				if diff := cmp.Diff(tc.want(t, format), got); diff != "" {
					t.Errorf("-o %s (-want +got):\n%s", format, diff)
				}
			})
		}
	}

	// Results are printed as they are, unescaped; objects as kubectl prints them.
	if _, out, _ := p.runApart("history", "web", "-o", "json"); !strings.Contains(out, `"analysis": "success-rate 0.999 >= 0.99"`) {
		t.Errorf("history -o json escapes what it prints:\n%s", out)
	}
	if _, out, _ := p.runApart("get", "rollout", "web", "-o", "yaml"); strings.Contains(out, "managedFields") || !strings.HasPrefix(out, "apiVersion: tugboat.dev/v1alpha1\n") {
		t.Errorf("get -o yaml:\n%s", out)
	}
}

// TestNameAndWideOutput: -o name prints kind.group/name a line, as kubectl
// does; -o wide adds columns to a table.
func TestNameAndWideOutput(t *testing.T) {
	p := newPlugin(t)
	p.given("web", v1alpha1.RolloutStatus{Phase: v1alpha1.PhasePaused, Message: "paused at step 1 until promoted",
		Rollbacks: []v1alpha1.RevisionRollbacks{{Revision: "h0", Images: []string{"app:0"}, Aborted: 1}}})
	p.given("api", v1alpha1.RolloutStatus{Rollbacks: []v1alpha1.RevisionRollbacks{{Revision: "x0", Images: []string{"app:0"}, Requested: 1}}})

	for _, tc := range []struct {
		name string
		args []string
		want []string // the lines of stdout, each split into fields
	}{{
		name: "get -o name",
		args: []string{"get", "rollout", "web", "-o", "name"},
		want: []string{"rollout.tugboat.dev/web"},
	}, {
		name: "list -o name",
		args: []string{"list", "-o", "name"},
		want: []string{"rollout.tugboat.dev/api", "rollout.tugboat.dev/web"},
	}, {
		name: "list -o wide adds the target and message",
		args: []string{"list", "-o", "wide"},
		want: []string{
			"NAMESPACE NAME STEP WEIGHT PHASE STABLE CANARY AGE TARGET MESSAGE",
			"prod api - 0% - - - AGE deployment/api -",
			"prod web - 0% Paused - - AGE deployment/web paused at step 1 until promoted",
		},
	}, {
		name: "rollbacks -o wide names every rollout, in one namespace too",
		args: []string{"rollbacks", "-o", "wide"},
		want: []string{"IMAGE ROLLOUTS ABORTED REQUESTED SEEN IN", "app:0 2 1 1 prod/api, prod/web"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := p.runApart(tc.args...)
			var got []string
			for line := range strings.Lines(out) {
				f := strings.Fields(line)
				if slices.Contains(tc.args, "list") && len(f) > 7 && f[0] == p.ns {
					f[7] = "AGE" // the rollouts' age changes from run to run
				}
				got = append(got, strings.Join(f, " "))
			}
			if code != 0 {
				t.Errorf("exit %d\n%s%s", code, out, errOut)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	// -w -o json prints the Rollout again each time it changes.
	printed := p.watchChange(p.rolloutObj("web"), "promoting", func(ctx context.Context, out io.Writer) error {
		return p.follow(ctx, out, "get", "rollout", "web", "-w", "-o", "json")
	})
	var messages []string
	for dec := json.NewDecoder(strings.NewReader(printed)); ; {
		var ro v1alpha1.Rollout
		if err := dec.Decode(&ro); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("watch -o json: %v\n%s", err, printed)
		}
		messages = append(messages, ro.Status.Message)
	}
	if want := []string{"paused at step 1 until promoted", "promoting"}; !slices.Equal(messages, want) {
		t.Errorf("watch -o json printed the messages %q, want %q", messages, want)
	}
}

// TestUnknownOutput: a format a verb does not take stops it before it reads
// or writes anything, naming the formats it takes.
func TestUnknownOutput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "rollout", "web", "-o", "wide"}, `invalid argument "wide" for "-o, --output" flag: want json, yaml or name`},
		{[]string{"list", "-o", "xml"}, `invalid argument "xml" for "-o, --output" flag: want json, yaml, name or wide`},
		{[]string{"history", "web", "-o", "name"}, `invalid argument "name" for "-o, --output" flag: want json or yaml`},
		{[]string{"rollbacks", "-o", "name"}, `invalid argument "name" for "-o, --output" flag: want json, yaml or wide`},
		{[]string{"wait", "web", "-o", "wide"}, `invalid argument "wide" for "-o, --output" flag: want json or yaml`},
		{[]string{"rollback", "web", "-o", "JSON"}, `invalid argument "JSON" for "-o, --output" flag: want json or yaml`},
		{[]string{"promote", "web", "-o", "name"}, `invalid argument "name" for "-o, --output" flag: want json or yaml`},
		{[]string{"resume", "web", "--output=table"}, `invalid argument "table" for "-o, --output" flag: want json or yaml`},
		{[]string{"set", "image", "web", "app=app:3", "-o", "name"}, `invalid argument "name" for "-o, --output" flag: want json or yaml`},
		{[]string{"analysis", "run", "-f", "template.yaml", "-o", "name"}, `invalid argument "name" for "-o, --output" flag: want json or yaml`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var c cli
			// No cluster: a refused format must fail before one is needed.
			code := c.run(t, append(tc.args, "--kubeconfig", "/nonexistent")...)
			if code != exitTrouble || !strings.Contains(c.errOut.String(), tc.want) || c.out.Len() > 0 {
				t.Errorf("exit %d, want %d and %q\nstdout:\n%s\nstderr:\n%s", code, exitTrouble, tc.want, c.out.String(), c.errOut.String())
			}
		})
	}
}

// TestOutputHelp: every verb that prints says which formats -o takes, and
// shows one in its examples.
func TestOutputHelp(t *testing.T) {
	for _, verb := range [][]string{
		{"get", "rollout"}, {"list"}, {"history"}, {"rollbacks"}, {"wait"}, {"rollback"}, {"set", "image"}, {"analysis", "run"},
		{"promote"}, {"abort"}, {"retry"}, {"pause"}, {"resume"},
	} {
		var c cli
		if code := c.run(t, append(verb, "--help")...); code != 0 {
			t.Errorf("%v --help: exit %d\n%s", verb, code, c.errOut.String())
			continue
		}
		help := c.out.String()
		_, examples, _ := strings.Cut(help, "Examples:")
		examples, _, _ = strings.Cut(examples, "Flags:")
		if !strings.Contains(help, "-o, --output json|yaml") || !strings.Contains(examples, " -o ") {
			t.Errorf("%v --help lacks -o in its flags or examples:\n%s", verb, help)
		}
	}
	var b bytes.Buffer
	if err := (&output{format: "wide"}).print(&b, struct{}{}); err == nil {
		t.Error("-o wide printed an object")
	}
}
