package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func TestVersionNeedsNoCluster(t *testing.T) {
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	if code := execute(t.Context(), []string{"version", "--kubeconfig", "/nonexistent"}, streams); code != 0 || !strings.HasPrefix(out.String(), "kubectl tug ") {
		t.Fatalf("exit %d: %s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := execute(t.Context(), []string{"version", "-o", "json"}, streams); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var v struct {
		Version   string `json:"version"`
		GoVersion string `json:"goVersion"`
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || v.Version == "" || !strings.HasPrefix(v.GoVersion, "go1.") {
		t.Errorf("version -o json: %s (%v)", out.String(), err)
	}
}
