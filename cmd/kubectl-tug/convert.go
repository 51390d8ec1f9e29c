package main

import (
	"bytes"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tugboatdev/tugboat/convert"
)

func newConvertCmd(o *options) *cobra.Command {
	var files []string
	var out *output
	cmd := &cobra.Command{
		Use:   "convert -f FILE",
		Short: "Convert Argo Rollouts and Flagger objects into Tugboat's",
		Long: `Convert the objects of Argo Rollouts and Flagger in the files into Tugboat's, and
print them, to apply or to commit in their place:

  Argo Rollout             a Deployment (from its template; none with
                           workloadRef) and a Rollout
  Argo AnalysisTemplate,   Tugboat's, with the same fields
  ClusterAnalysisTemplate
  Flagger Canary           a Rollout, an AnalysisTemplate per metric and the
                           VirtualService Flagger generated
  Flagger MetricTemplate   an AnalysisTemplate

Objects of any other kind (Services, VirtualServices, Deployments) are
printed as they are. Nothing is read from or written to a cluster.

Whatever could not be carried over is said on stderr: a summary line, then
one line per finding, naming the source object and its field. Read them
before applying. Convert a Canary together with the MetricTemplates it uses
(-f twice, or one stream), since their queries are copied into its templates.

Exit codes: 0 converted (with findings or without); 4 the input could not be
read (no such file, not YAML, a field of the wrong type).`,
		Example: `  kubectl tug convert -f rollout.yaml
  kubectl tug convert -f canary.yaml -f metrictemplates.yaml > tugboat.yaml
  kubectl get rollouts.argoproj.io,analysistemplates.argoproj.io -o yaml | kubectl tug convert -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var stream bytes.Buffer
			for _, f := range files {
				b, err := o.readFile(f)
				if err != nil {
					return err
				}
				stream.Write(b)
				stream.WriteString("\n---\n")
			}
			res, err := convert.Convert(stream.Bytes())
			if err != nil {
				return err
			}
			if err := printConverted(o, out, res.Objects); err != nil {
				return err
			}
			w := o.streams.ErrOut
			fmt.Fprintf(w, "converted %d documents into %d objects; %d findings\n", res.Documents, len(res.Objects), len(res.Findings))
			for _, f := range res.Findings {
				fmt.Fprintln(w, f.String())
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "a YAML file of objects to convert (- for stdin; repeatable)")
	_ = cmd.MarkFlagRequired("filename")
	out = outputFlag(cmd, "yaml", "json")
	return cmd
}

// printConverted prints the objects as YAML documents, or with -o json as
// one List, which kubectl apply -f takes as well.
func printConverted(o *options, out *output, objs []*unstructured.Unstructured) error {
	if out.format == "json" {
		list := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "v1", "kind": "List"}}
		for _, obj := range objs {
			list.Items = append(list.Items, *obj)
		}
		return out.print(o.streams.Out, list)
	}
	out.format = "yaml"
	for _, obj := range objs {
		if err := out.print(o.streams.Out, obj); err != nil {
			return err
		}
	}
	return nil
}
