// Package config holds the kustomize install of Tugboat; this test builds it
// and applies it to a real API server.
package config_test

import (
	"cmp"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/tugboatdev/tugboat/sandbox/cluster"
)

func TestInstallAppliesWithLeastPrivilege(t *testing.T) {
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "default")
	if err != nil {
		t.Fatalf("kustomize build config/default: %v", err)
	}
	env := cluster.Start(t)
	var objs []*unstructured.Unstructured
	for _, res := range resMap.Resources() {
		m, err := res.Map()
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	// Namespaces first, as kubectl apply orders them.
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
		return cmp.Compare(applyOrder(a), applyOrder(b))
	})
	kinds := map[string]int{}
	for _, u := range objs {
		kinds[u.GetKind()]++
		// Server-side apply: the CRDs are already installed by the test server.
		if err := env.Client.Patch(t.Context(), u, client.Apply, client.FieldOwner("install-test"), client.ForceOwnership); err != nil {
			t.Errorf("apply %s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
	}
	for kind, want := range map[string]int{"CustomResourceDefinition": 8, "Namespace": 1, "Deployment": 1, "ServiceAccount": 1, "ClusterRole": 4} {
		if kinds[kind] != want {
			t.Errorf("want %d %s, got %d", want, kind, kinds[kind])
		}
	}

	var controller rbacv1.ClusterRole
	if err := env.Client.Get(t.Context(), client.ObjectKey{Name: "tugboat-controller"}, &controller); err != nil {
		t.Fatal(err)
	}
	for _, r := range controller.Rules {
		if slices.Contains(r.Resources, "secrets") || slices.Contains(r.Resources, "*") {
			t.Errorf("the controller's ClusterRole grants %v on %v; Secrets are granted per namespace only", r.Verbs, r.Resources)
		}
		if slices.Contains(r.Verbs, "*") || slices.Contains(r.APIGroups, "*") {
			t.Errorf("wildcard in rule %+v", r)
		}
	}
	var sa unstructured.Unstructured
	sa.SetAPIVersion("v1")
	sa.SetKind("ServiceAccount")
	if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: "tugboat-system", Name: "tugboat-controller"}, &sa); err != nil {
		t.Errorf("service account tugboat-system/tugboat-controller: %v", err)
	}
	var binding rbacv1.ClusterRoleBinding
	if err := env.Client.Get(t.Context(), client.ObjectKey{Name: "tugboat-controller"}, &binding); err != nil {
		t.Fatal(err)
	}
	if s := binding.Subjects; len(s) != 1 || s[0].Namespace != "tugboat-system" || s[0].Name != "tugboat-controller" {
		t.Errorf("binding subjects %+v; want the tugboat-system/tugboat-controller service account", s)
	}
}

func applyOrder(u *unstructured.Unstructured) int {
	if u.GetKind() == "Namespace" {
		return 0
	}
	return 1
}
