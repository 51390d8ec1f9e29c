package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"
)

// output is a verb's -o flag. Empty means the verb's text for people and
// wide the same text with more columns; json, yaml and name are printed by
// cli-runtime's printers, as kubectl prints them.
type output struct {
	format  string
	allowed []string
	printer printers.ResourcePrinter // made once, so that YAML documents are separated by ---
}

// outputFlag gives cmd -o, taking formats (json, yaml, name, wide).
func outputFlag(cmd *cobra.Command, formats ...string) *output {
	o := &output{allowed: formats}
	cmd.Flags().VarP(o, "output", "o", "output format: "+oneOf(formats)+" (default: text for people)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
	return o
}

// oneOf is formats as a sentence: "json or yaml", "json, yaml or name".
func oneOf(formats []string) string {
	if len(formats) < 2 {
		return strings.Join(formats, "")
	}
	return strings.Join(formats[:len(formats)-1], ", ") + " or " + formats[len(formats)-1]
}

func (o *output) String() string { return o.format }
func (o *output) Type() string   { return strings.Join(o.allowed, "|") }

// Set refuses a format the verb does not take while the flags are parsed,
// before anything is read or written.
func (o *output) Set(format string) error {
	if format != "" && !slices.Contains(o.allowed, format) {
		return fmt.Errorf("want %s", oneOf(o.allowed))
	}
	o.format = format
	return nil
}

// structured reports whether -o asks for json, yaml or name, which print
// prints, rather than the verb's text.
func (o *output) structured() bool {
	return o.format == "json" || o.format == "yaml" || o.format == "name"
}

func (o *output) wide() bool { return o.format == "wide" }

// print prints v as -o asks. An API object (its apiVersion and kind set) is
// printed as kubectl prints it, managedFields left out; a list with -o name
// is printed as its items' names. Any other value is a verb's result (wait's
// verdict, history's revisions): it goes to the printers as its JSON, with
// HTML escaping off, since results hold comparisons such as >= 0.99.
func (o *output) print(out io.Writer, v any) error {
	if o.printer == nil {
		switch o.format {
		case "json":
			o.printer = &printers.OmitManagedFieldsPrinter{Delegate: &printers.JSONPrinter{}}
		case "yaml":
			o.printer = &printers.OmitManagedFieldsPrinter{Delegate: &printers.YAMLPrinter{}}
		case "name":
			o.printer = &printers.NamePrinter{ShortOutput: true}
		default:
			return fmt.Errorf("-o %q prints no object", o.format)
		}
	}
	obj, ok := v.(runtime.Object)
	if !ok {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return err
		}
		obj = &runtime.Unknown{Raw: bytes.TrimSpace(b.Bytes()), ContentType: runtime.ContentTypeJSON}
	}
	if o.format == "name" && meta.IsListType(obj) {
		// NamePrinter takes no typed list: kubectl get -o name names each item.
		return meta.EachListItem(obj, func(item runtime.Object) error { return o.printer.PrintObj(item, out) })
	}
	return o.printer.PrintObj(obj, out)
}
