package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// previewFlags are the Preview that create makes from flags.
type previewFlags struct {
	sourceNamespace, rollout, virtualService, route string
	service                                         string
	port, percentage                                int32
	methods                                         []string
	allowUnsafeMethods                              bool
	ttl                                             time.Duration
	templates, clusterTemplates, args               []string
	pathPrefix                                      string
}

func newPreviewCreateCmd(o *options) *cobra.Command {
	var f previewFlags
	var file string
	var out *output
	cmd := &cobra.Command{
		Use:   "create NAME --source-namespace NS (--rollout NAME | --virtual-service NAME --route ROUTE) --service NAME --port PORT",
		Short: "Create a preview, or start an existing one over with a new spec",
		Long: `Create a Preview in the namespace (-n): copies of a share of the source's
requests go to --service on --port, in the same namespace, for as long as
--ttl, judged by the analysis templates given. The source is a Rollout's
managed route (--rollout) or one route of a VirtualService
(--virtual-service with --route), in --source-namespace, whose mirror
policies must allow the preview.

Unset, --percentage is 10, --method GET and HEAD, and --ttl 24h. Methods
that change state (POST, PUT, PATCH, DELETE, CONNECT) also need
--allow-unsafe-methods. --arg gives the templates' arguments; --path-prefix
copies only requests whose path starts with it.

With -f FILE (- for stdin), the Preview is read from a manifest instead: its
name (or NAME), namespace (or -n), labels, annotations and spec.

When the Preview exists, its spec becomes the one given: a new spec is a new
generation, and the preview starts over (so a CI re-run for the same pull
request judges the new build). It prints whether the Preview was created,
updated or unchanged; -o json, yaml or name print the Preview as stored.
The API server's refusals are printed as it gives them, naming the field.

Exit codes: 0 done; 4 not done (bad flags or manifest, a refused spec, no
cluster).`,
		Example: `  kubectl tug preview create pr-42 -n pr-42 --source-namespace prod --rollout web --service web --port 8080 \
      --template success-rate --arg service=web
  kubectl tug preview create pr-42 -n pr-42 --source-namespace prod --virtual-service web --route primary \
      --service web --port 8080 --percentage 25 --method GET --path-prefix /api --ttl 2h
  kubectl tug preview create -f preview.yaml -o name
  envsubst < preview.yaml | kubectl tug preview create -f -`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := o.client()
			if err != nil {
				return err
			}
			var want *v1alpha1.Preview
			if file == "" {
				want, err = f.preview(cmd.Flags(), args, ns)
			} else {
				want, err = o.previewFromFile(cmd.Flags(), file, args, ns)
			}
			if err != nil {
				return err
			}
			got, did, err := applyPreview(cmd.Context(), c, want)
			if err != nil {
				return err
			}
			if out.structured() {
				return out.print(o.streams.Out, got)
			}
			_, err = fmt.Fprintf(o.streams.Out, "preview %s/%s %s\n", got.Namespace, got.Name, did)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.sourceNamespace, "source-namespace", "", "the production namespace copied from (required)")
	fl.StringVar(&f.rollout, "rollout", "", "copy the managed route of this Rollout in --source-namespace")
	fl.StringVar(&f.virtualService, "virtual-service", "", "copy a route (--route) of this VirtualService in --source-namespace")
	fl.StringVar(&f.route, "route", "", "the HTTP route of --virtual-service to copy")
	fl.StringVar(&f.service, "service", "", "the preview's Service, in the namespace, that receives the copies (required)")
	fl.Int32Var(&f.port, "port", 0, "the port of --service the copies are sent to (required)")
	fl.Int32Var(&f.percentage, "percentage", 0, "share of the route's matching requests copied, 1 to 100 (default 10)")
	fl.StringArrayVar(&f.methods, "method", nil, "a request method to copy (repeatable; default GET and HEAD)")
	fl.BoolVar(&f.allowUnsafeMethods, "allow-unsafe-methods", false, "allow --method POST, PUT, PATCH, DELETE or CONNECT (the mirror policy must too)")
	fl.DurationVar(&f.ttl, "ttl", 0, "how long the preview receives copies, from 1m to 720h (default 24h)")
	fl.StringArrayVar(&f.templates, "template", nil, "an AnalysisTemplate, in the namespace, that judges the preview (repeatable)")
	fl.StringArrayVar(&f.clusterTemplates, "cluster-template", nil, "a ClusterAnalysisTemplate that judges the preview (repeatable)")
	fl.StringArrayVar(&f.args, "arg", nil, "a template argument, NAME=VALUE (repeatable)")
	fl.StringVar(&f.pathPrefix, "path-prefix", "", "copy only requests whose path starts with this")
	fl.StringVarP(&file, "filename", "f", "", "read the Preview from this manifest (- for stdin) instead of the flags")
	out = outputFlag(cmd, "json", "yaml", "name")
	return cmd
}

// preview is the Preview the flags ask for, named args[0] in namespace ns.
// Every flag is checked before anything is sent; what the API server checks
// (the ranges of --port and --ttl, which methods) is left to it, so that
// its message names the field.
func (f previewFlags) preview(fl *pflag.FlagSet, args []string, ns string) (*v1alpha1.Preview, error) {
	var bad []string
	if len(args) != 1 {
		bad = append(bad, "give the Preview's NAME (or -f FILE)")
	}
	if f.sourceNamespace == "" {
		bad = append(bad, "--source-namespace is required")
	}
	switch {
	case f.rollout != "" && f.virtualService != "":
		bad = append(bad, "--rollout and --virtual-service: give one source, not both")
	case f.rollout == "" && f.virtualService == "":
		bad = append(bad, "give the source: --rollout, or --virtual-service with --route")
	case f.virtualService != "" && f.route == "":
		bad = append(bad, "--virtual-service needs --route")
	case f.rollout != "" && f.route != "":
		bad = append(bad, "--route goes with --virtual-service; a Rollout's copied route is its first managed one")
	}
	if f.service == "" {
		bad = append(bad, "--service is required")
	}
	if !fl.Changed("port") {
		bad = append(bad, "--port is required")
	}
	if fl.Changed("percentage") && (f.percentage < 1 || f.percentage > 100) {
		bad = append(bad, fmt.Sprintf("--percentage: want 1 to 100, got %d", f.percentage))
	}
	if len(f.args) > 0 && len(f.templates)+len(f.clusterTemplates) == 0 {
		bad = append(bad, "--arg needs --template or --cluster-template")
	}
	given, err := parseArgs(f.args)
	if err != nil {
		bad = append(bad, err.Error())
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("bad flags, nothing was sent: %s", strings.Join(bad, "; "))
	}

	p := &v1alpha1.Preview{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: args[0]},
		Spec: v1alpha1.PreviewSpec{
			Source:             v1alpha1.PreviewSource{Namespace: f.sourceNamespace, Rollout: f.rollout},
			Service:            v1alpha1.PreviewService{Name: f.service, Port: f.port},
			Percentage:         f.percentage,
			AllowUnsafeMethods: f.allowUnsafeMethods,
		},
	}
	s := &p.Spec
	if f.virtualService != "" {
		s.Source.VirtualService = &v1alpha1.PreviewRouteRef{Name: f.virtualService, Route: f.route}
	}
	for _, m := range f.methods {
		s.Methods = append(s.Methods, strings.ToUpper(m))
	}
	if fl.Changed("ttl") {
		s.TTL = &metav1.Duration{Duration: f.ttl}
	}
	if f.pathPrefix != "" {
		s.Match = []v1alpha1.PreviewMatch{{Path: &v1alpha1.StringMatch{Prefix: f.pathPrefix}}}
	}
	if len(f.templates)+len(f.clusterTemplates) > 0 {
		s.Analysis = &v1alpha1.Analysis{}
		for _, t := range f.templates {
			s.Analysis.Templates = append(s.Analysis.Templates, v1alpha1.AnalysisTemplateRef{TemplateName: t})
		}
		for _, t := range f.clusterTemplates {
			s.Analysis.Templates = append(s.Analysis.Templates, v1alpha1.AnalysisTemplateRef{TemplateName: t, ClusterScope: ptr.To(true)})
		}
		for _, a := range given {
			s.Analysis.Args = append(s.Analysis.Args, argo.AnalysisRunArgument{Name: a.Name, Value: *a.Value})
		}
	}
	return p, nil
}

// previewFromFile is the Preview in the manifest file ("-": stdin), named
// args[0] if the manifest names none, in the manifest's namespace or else
// ns. A namespace given with -n must be the manifest's, as kubectl has it.
func (o *options) previewFromFile(fl *pflag.FlagSet, file string, args []string, ns string) (*v1alpha1.Preview, error) {
	var given []string
	for _, name := range []string{"source-namespace", "rollout", "virtual-service", "route", "service", "port", "percentage",
		"method", "allow-unsafe-methods", "ttl", "template", "cluster-template", "arg", "path-prefix"} {
		if fl.Changed(name) {
			given = append(given, "--"+name)
		}
	}
	if len(given) > 0 {
		return nil, fmt.Errorf("-f takes the whole Preview from %s: leave out %s", file, strings.Join(given, ", "))
	}
	in := o.streams.In
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		in = f
	}
	p, err := readPreview(in)
	if err != nil {
		return nil, fmt.Errorf("-f %s: %w", file, err)
	}
	switch {
	case len(args) == 1 && p.Name != "" && p.Name != args[0]:
		return nil, fmt.Errorf("-f %s names Preview %q, not %q", file, p.Name, args[0])
	case len(args) == 1:
		p.Name = args[0]
	case p.Name == "":
		return nil, fmt.Errorf("-f %s: the manifest has no metadata.name; give NAME", file)
	}
	explicit := ptr.Deref(o.flags.Namespace, "")
	switch {
	case p.Namespace == "":
		p.Namespace = ns
	case explicit != "" && explicit != p.Namespace:
		return nil, fmt.Errorf("-f %s: the manifest's namespace %q is not -n %q; pass -n %s, or drop -n", file, p.Namespace, explicit, p.Namespace)
	}
	return p, nil
}

// readPreview reads one Preview, YAML or JSON, strictly: a misspelt field is
// an error rather than a default. Only its name, namespace, labels,
// annotations and spec are kept; the rest is the API server's to set.
func readPreview(r io.Reader) (*v1alpha1.Preview, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var docs []json.RawMessage
	for {
		var doc json.RawMessage
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) > 0 && string(doc) != "null" {
			docs = append(docs, doc)
		}
	}
	if len(docs) != 1 {
		return nil, fmt.Errorf("want one Preview, found %d objects", len(docs))
	}
	var p v1alpha1.Preview
	strict := json.NewDecoder(bytes.NewReader(docs[0]))
	strict.DisallowUnknownFields()
	if err := strict.Decode(&p); err != nil {
		return nil, err
	}
	if gvk := v1alpha1.GroupVersion.WithKind("Preview"); p.GroupVersionKind() != gvk {
		return nil, fmt.Errorf("want apiVersion %s and kind Preview, got %q and %q", gvk.GroupVersion(), p.APIVersion, p.Kind)
	}
	return &v1alpha1.Preview{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.Labels, Annotations: p.Annotations},
		Spec:       p.Spec,
	}, nil
}

// applyPreview creates want, or gives the Preview of its name want's spec,
// labels and annotations (others' labels and annotations are kept). It
// returns the Preview as stored and what was done, as create says it.
func applyPreview(ctx context.Context, c client.Client, want *v1alpha1.Preview) (*v1alpha1.Preview, string, error) {
	key := client.ObjectKeyFromObject(want)
	var got *v1alpha1.Preview
	var did string
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var err error
		got, err = getPreview(ctx, c, key)
		switch {
		case apierrors.IsNotFound(err):
			got, did = want.DeepCopy(), "created"
			if err := c.Create(ctx, got, client.FieldOwner("kubectl-tug")); err != nil {
				return fmt.Errorf("create preview %s: %w", key, err)
			}
			return nil
		case err != nil:
			return err
		case got.DeletionTimestamp != nil:
			return fmt.Errorf("preview %s is being deleted (the controller is removing its mirror); create it again once it is gone", key)
		}
		generation, version := got.Generation, got.ResourceVersion
		got.Spec = want.Spec
		for k, v := range want.Labels {
			metav1.SetMetaDataLabel(&got.ObjectMeta, k, v)
		}
		for k, v := range want.Annotations {
			metav1.SetMetaDataAnnotation(&got.ObjectMeta, k, v)
		}
		if err := c.Update(ctx, got, client.FieldOwner("kubectl-tug")); err != nil {
			return fmt.Errorf("update preview %s: %w", key, err)
		}
		switch {
		case got.Generation != generation:
			did = fmt.Sprintf("updated: a new spec (generation %d), so the preview starts over", got.Generation)
		case got.ResourceVersion != version:
			did = "updated: labels or annotations only; the spec is unchanged and the preview goes on"
		default:
			did = "unchanged"
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	got.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Preview"))
	return got, did, nil
}
