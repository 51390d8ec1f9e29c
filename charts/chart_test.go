// Package charts holds Tugboat's Helm chart; these tests lint it and render
// it with Helm's own library, as `helm lint` and `helm template` do. The test
// in test/install installs it onto a real API server.
package charts_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const chartDir = "tugboat"

func TestChartLintsStrictly(t *testing.T) {
	lint := action.NewLint()
	lint.Strict = true
	lint.Namespace = "tugboat-system"
	for _, vals := range []map[string]any{
		nil,
		{"receiver": map[string]any{"enabled": true, "tlsSecretName": "tugboat-receiver-tls"}, "serviceMonitor": map[string]any{"enabled": true}},
	} {
		res := lint.Run([]string{chartDir}, vals)
		for _, m := range res.Messages {
			// helm lint --strict fails on warnings; INFO (such as "icon is
			// recommended") it only prints.
			if m.Severity >= support.WarningSev {
				t.Errorf("lint %v: %v", vals, m)
			}
		}
		for _, err := range res.Errors {
			t.Errorf("lint %v: %v", vals, err)
		}
	}
}

// TestChartMatchesTheInstall holds the chart's defaults to config/, which
// dist/install.yaml is built from: the same objects (but the Namespace, which
// Helm leaves to --create-namespace), the same rules, the same container.
func TestChartMatchesTheInstall(t *testing.T) {
	chart := index(render(t, nil))
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "../config/default")
	if err != nil {
		t.Fatal(err)
	}
	install := map[string]*unstructured.Unstructured{}
	for _, res := range resMap.Resources() {
		m, err := res.Map()
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() != "Namespace" {
			install[key(u)] = u
		}
	}
	if got, want := sortedKeys(chart), sortedKeys(install); !slices.Equal(got, want) {
		t.Fatalf("the chart renders\n  %v\nthe install holds\n  %v", got, want)
	}
	for k, u := range install {
		switch u.GetKind() {
		case "ClusterRole", "Role":
			var a, b rbacv1.ClusterRole
			convert(t, u, &a)
			convert(t, chart[k], &b)
			if !equalYAML(t, a.Rules, b.Rules) {
				t.Errorf("%s: the chart's rules differ from config/rbac's", k)
			}
			if !equalYAML(t, a.AggregationRule, b.AggregationRule) {
				t.Errorf("%s: the chart's aggregation rule differs", k)
			}
			for l, v := range a.Labels {
				if strings.HasPrefix(l, "rbac.authorization.k8s.io/") && b.Labels[l] != v {
					t.Errorf("%s: the chart lacks the label %s=%s", k, l, v)
				}
			}
		case "Deployment":
			var a, b appsv1.Deployment
			convert(t, u, &a)
			convert(t, chart[k], &b)
			ca, cb := a.Spec.Template.Spec.Containers[0], b.Spec.Template.Spec.Containers[0]
			ca.Image, cb.Image = "", ""
			cb.ImagePullPolicy = ""
			// The chart says the log defaults out loud.
			cb.Args = slices.DeleteFunc(cb.Args, func(a string) bool { return a == "--log-level=info" || a == "--log-format=json" })
			if !equalYAML(t, ca, cb) {
				a, _ := yaml.Marshal(ca)
				b, _ := yaml.Marshal(cb)
				t.Errorf("the chart's container differs from config/manager's:\n%s\nchart:\n%s", a, b)
			}
			if *a.Spec.Replicas != *b.Spec.Replicas || !equalYAML(t, a.Spec.Template.Spec.SecurityContext, b.Spec.Template.Spec.SecurityContext) {
				t.Errorf("the chart's replicas or pod security context differ from config/manager's")
			}
		}
	}
}

func TestChartValues(t *testing.T) {
	for _, tc := range []struct {
		name    string
		values  string
		wantErr string
		check   func(t *testing.T, objs map[string]*unstructured.Unstructured)
	}{{
		name: "defaults",
		check: func(t *testing.T, objs map[string]*unstructured.Unstructured) {
			d := deployment(t, objs)
			if got := d.Spec.Template.Spec.Containers[0].Image; got != "ghcr.io/tugboatdev/tugboat:v0.0.0-dev" {
				t.Errorf("image %q; want the chart's appVersion as the tag", got)
			}
			if objs["PodDisruptionBudget/tugboat-controller"] == nil {
				t.Error("two replicas and no PodDisruptionBudget")
			}
			if objs["ServiceMonitor/tugboat-controller"] != nil || objs["Service/tugboat-receiver"] != nil {
				t.Error("a ServiceMonitor or the trigger endpoint's Service by default")
			}
			if len(d.Spec.Template.Spec.Volumes) != 0 {
				t.Errorf("volumes by default: %v", d.Spec.Template.Spec.Volumes)
			}
		},
	}, {
		name:   "image by digest",
		values: "image: {tag: v1.2.3, digest: sha256:" + strings.Repeat("ab", 32) + "}",
		check: func(t *testing.T, objs map[string]*unstructured.Unstructured) {
			if got, want := deployment(t, objs).Spec.Template.Spec.Containers[0].Image, "ghcr.io/tugboatdev/tugboat:v1.2.3@sha256:"+strings.Repeat("ab", 32); got != want {
				t.Errorf("image %q; want %q", got, want)
			}
		},
	}, {
		name: "prometheus with mutual TLS",
		values: `prometheus:
  address: https://prometheus.monitoring:9090
  allowedHosts: [thanos.monitoring:9090, "*.prom.example.com"]
  tls: {secretName: prometheus-client, clientCertificate: true, serverName: prometheus.monitoring.svc}
logLevel: debug`,
		check: func(t *testing.T, objs map[string]*unstructured.Unstructured) {
			d := deployment(t, objs)
			c := d.Spec.Template.Spec.Containers[0]
			wantArgs(t, c.Args, "--prometheus-address=https://prometheus.monitoring:9090",
				"--prometheus-allowed-hosts=thanos.monitoring:9090,*.prom.example.com",
				"--prometheus-ca-file=/etc/tugboat/prometheus-tls/ca.crt",
				"--prometheus-cert-file=/etc/tugboat/prometheus-tls/tls.crt",
				"--prometheus-key-file=/etc/tugboat/prometheus-tls/tls.key",
				"--prometheus-server-name=prometheus.monitoring.svc", "--log-level=debug")
			if v := d.Spec.Template.Spec.Volumes; len(v) != 1 || v[0].Secret == nil || v[0].Secret.SecretName != "prometheus-client" {
				t.Errorf("volumes %+v; want the Secret prometheus-client", v)
			}
			if m := c.VolumeMounts; len(m) != 1 || m[0].MountPath != "/etc/tugboat/prometheus-tls" || !m[0].ReadOnly {
				t.Errorf("mounts %+v", m)
			}
		},
	}, {
		name:   "egress allow-lists and extra args",
		values: "web: {allowedHosts: [approvals.example.com]}\nnotifications: {allowedHosts: [hooks.slack.com]}\nextraArgs: [--workers=8]",
		check: func(t *testing.T, objs map[string]*unstructured.Unstructured) {
			wantArgs(t, deployment(t, objs).Spec.Template.Spec.Containers[0].Args,
				"--web-allowed-hosts=approvals.example.com", "--notification-allowed-hosts=hooks.slack.com", "--workers=8")
		},
	}, {
		name:   "trigger endpoint",
		values: "receiver: {enabled: true, tlsSecretName: receiver-tls, service: {type: LoadBalancer, port: 8443}}",
		check: func(t *testing.T, objs map[string]*unstructured.Unstructured) {
			d := deployment(t, objs)
			wantArgs(t, d.Spec.Template.Spec.Containers[0].Args, "--receiver-address=:9443",
				"--receiver-tls-cert-file=/etc/tugboat/receiver-tls/tls.crt", "--receiver-tls-key-file=/etc/tugboat/receiver-tls/tls.key")
			svc := objs["Service/tugboat-receiver"]
			if svc == nil {
				t.Fatal("no Service tugboat-receiver")
			}
			if typ, _, _ := unstructured.NestedString(svc.Object, "spec", "type"); typ != "LoadBalancer" {
				t.Errorf("receiver Service type %q", typ)
			}
		},
	}, {
		name:   "ServiceMonitor",
		values: "serviceMonitor: {enabled: true, interval: 15s, labels: {release: kube-prometheus}}",
		check: func(t *testing.T, objs map[string]*unstructured.Unstructured) {
			sm := objs["ServiceMonitor/tugboat-controller"]
			if sm == nil {
				t.Fatal("no ServiceMonitor")
			}
			if sm.GetLabels()["release"] != "kube-prometheus" {
				t.Errorf("labels %v", sm.GetLabels())
			}
			eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
			if len(eps) != 1 || eps[0].(map[string]any)["port"] != "metrics" || eps[0].(map[string]any)["interval"] != "15s" || eps[0].(map[string]any)["honorLabels"] != true {
				t.Errorf("endpoints %v", eps)
			}
		},
	}, {
		name:   "one replica",
		values: "replicas: 1\nleaderElection: {enabled: false}",
		check: func(t *testing.T, objs map[string]*unstructured.Unstructured) {
			if objs["PodDisruptionBudget/tugboat-controller"] != nil {
				t.Error("a PodDisruptionBudget of minAvailable 1 for one replica would block every drain")
			}
			wantArgs(t, deployment(t, objs).Spec.Template.Spec.Containers[0].Args, "--leader-elect=false")
		},
	}, {
		name:   "pod placement",
		values: "priorityClassName: system-cluster-critical\npodLabels: {team: platform}\npodAnnotations: {a: b}\nnodeSelector: {pool: infra}\ntolerations: [{key: infra, operator: Exists}]\nimagePullSecrets: [{name: regcred}]",
		check: func(t *testing.T, objs map[string]*unstructured.Unstructured) {
			p := deployment(t, objs).Spec.Template
			if p.Spec.PriorityClassName != "system-cluster-critical" || p.Labels["team"] != "platform" || p.Labels["app.kubernetes.io/name"] != "tugboat" ||
				p.Annotations["a"] != "b" || p.Spec.NodeSelector["pool"] != "infra" || len(p.Spec.Tolerations) != 1 ||
				len(p.Spec.ImagePullSecrets) != 1 || p.Spec.ImagePullSecrets[0].Name != "regcred" {
				t.Errorf("pod template %+v", p)
			}
		},
	}, {
		name:   "no roles for people",
		values: "rbac: {peopleRoles: false}",
		check: func(t *testing.T, objs map[string]*unstructured.Unstructured) {
			if objs["ClusterRole/tugboat-view"] != nil || objs["ClusterRole/tugboat-edit"] != nil {
				t.Error("people roles rendered though rbac.peopleRoles is false")
			}
		},
	},
		{name: "replicas without leader election", values: "replicas: 3\nleaderElection: {enabled: false}", wantErr: "replicas: more than one replica needs leaderElection.enabled"},
		{name: "trigger endpoint without TLS", values: "receiver: {enabled: true}", wantErr: "receiver.tlsSecretName"},
		{name: "PodDisruptionBudget that blocks drains", values: "replicas: 2\npodDisruptionBudget: {minAvailable: 2}", wantErr: "podDisruptionBudget.minAvailable"},
		{name: "TLS Secret unused", values: "prometheus: {tls: {secretName: s, ca: false}}", wantErr: "prometheus.tls"},
		{name: "zero replicas", values: "replicas: 0", wantErr: "replicas"},
		{name: "too many replicas", values: "replicas: 50", wantErr: "replicas"},
		{name: "misspelt value", values: "replica: 3", wantErr: "'replica' not allowed"},
		{name: "TLS to a plain address", values: "prometheus: {address: 'http://prometheus:9090', tls: {secretName: s}}", wantErr: "prometheus.tls: needs prometheus.address"},
		{name: "priority class smuggling a field", values: "priorityClassName: \"x\\n      hostNetwork: true\"", wantErr: "priorityClassName"},
		{name: "extra arg overriding the chart's", values: "extraArgs: [--leader-elect=false]", wantErr: "extraArgs"},
		{name: "extra arg for the sandbox", values: "extraArgs: [--receiver-allow-plain-http]", wantErr: "extraArgs"},
		{name: "pod label overriding the selector", values: "podLabels: {app.kubernetes.io/name: other}", wantErr: "invalid propertyName 'app.kubernetes.io/name'"},
		{name: "metrics on the health port", values: "metrics: {port: 8081}", wantErr: "metrics/port"},
		{name: "unknown log level", values: "logLevel: verbose", wantErr: "logLevel"},
		{name: "digest not sha256", values: "image: {digest: latest}", wantErr: "digest"},
		{name: "extra arg not a flag", values: "extraArgs: [workers=8]", wantErr: "extraArgs"},
		{name: "address with a comma", values: "prometheus: {allowedHosts: ['a.example.com,b.example.com']}", wantErr: "allowedHosts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var vals map[string]any
			if err := yaml.Unmarshal([]byte(tc.values), &vals); err != nil {
				t.Fatal(err)
			}
			manifest, err := renderErr(vals)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v; want one naming %q", err, tc.wantErr)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, index(manifest))
		})
	}
}

// renderErr renders the chart as `helm template --include-crds` does.
func renderErr(vals map[string]any) ([]*unstructured.Unstructured, error) {
	chart, err := loader.Load(chartDir)
	if err != nil {
		return nil, err
	}
	install := action.NewInstall(action.NewConfiguration())
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = "tugboat"
	install.Namespace = "tugboat-system"
	install.Replace = true
	install.IncludeCRDs = true
	// The test servers' version, not the one Helm assumes with no cluster.
	if install.KubeVersion, err = common.ParseKubeVersion(kubernetesVersion()); err != nil {
		return nil, err
	}
	r, err := install.Run(chart, vals)
	if err != nil {
		return nil, err
	}
	rel, ok := r.(*releasev1.Release)
	if !ok {
		return nil, errors.New("not a v1 release")
	}
	return decode([]byte(rel.Manifest))
}

// kubernetesVersion is the version hack/tools builds the test servers at.
func kubernetesVersion() string {
	b, err := os.ReadFile("../hack/tools/versions.env")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "KUBERNETES_VERSION="); ok {
			return v
		}
	}
	return ""
}

func render(t *testing.T, vals map[string]any) []*unstructured.Unstructured {
	t.Helper()
	objs, err := renderErr(vals)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func decode(manifest []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return objs, nil
		} else if err != nil {
			return nil, err
		}
		if u.Object != nil {
			objs = append(objs, &u)
		}
	}
}

func index(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	m := map[string]*unstructured.Unstructured{}
	for _, u := range objs {
		m[key(u)] = u
	}
	return m
}

func key(u *unstructured.Unstructured) string { return u.GetKind() + "/" + u.GetName() }

func sortedKeys(m map[string]*unstructured.Unstructured) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func convert(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	b, err := yaml.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("%s: %v", key(u), err)
	}
}

func equalYAML(t *testing.T, a, b any) bool {
	t.Helper()
	x, err := yaml.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}

func deployment(t *testing.T, objs map[string]*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	u := objs["Deployment/tugboat-controller"]
	if u == nil {
		t.Fatal("no Deployment tugboat-controller")
	}
	var d appsv1.Deployment
	convert(t, u, &d)
	return &d
}

func wantArgs(t *testing.T, args []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(args, w) {
			t.Errorf("args %q lack %q", args, w)
		}
	}
}

// TestChartCRDsAreTheGenerated makes sure the chart's crds/ is config/crd/bases
// (a link), so `make generate` updates both.
func TestChartCRDsAreTheGenerated(t *testing.T) {
	target, err := os.Readlink(filepath.Join(chartDir, "crds"))
	if err != nil {
		t.Fatal(err)
	}
	if target != "../../config/crd/bases" {
		t.Errorf("charts/tugboat/crds links to %s", target)
	}
	crds := 0
	for _, u := range render(t, nil) {
		if u.GetKind() == "CustomResourceDefinition" {
			crds++
		}
	}
	entries, err := os.ReadDir("../config/crd/bases")
	if err != nil {
		t.Fatal(err)
	}
	if crds != len(entries) {
		t.Errorf("the chart renders %d CRDs; config/crd/bases holds %d", crds, len(entries))
	}
}
