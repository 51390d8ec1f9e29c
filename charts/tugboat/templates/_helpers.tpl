{{/*
Names are fixed, as in config/ and dist/install.yaml: Tugboat's CRDs and
ClusterRoles are cluster-wide, so a cluster runs one Tugboat, and namespaces
bind tugboat-secret-reader to <namespace>:tugboat-controller by that name.
*/}}

{{- define "tugboat.labels" -}}
app.kubernetes.io/name: tugboat
app.kubernetes.io/part-of: tugboat
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tugboat.selectorLabels" -}}
app.kubernetes.io/name: tugboat
app.kubernetes.io/component: controller
{{- end }}

{{- define "tugboat.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}:{{ $tag }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end -}}
{{- end }}

{{/* tugboat.rules is the rules of the first document of a file in config/rbac. */}}
{{- define "tugboat.rules" -}}
{{- $doc := first (splitList "\n---\n" (.root.Files.Get (printf "files/rbac/%s" .file))) | fromYaml -}}
{{- required (printf "files/rbac/%s holds no rules" .file) $doc.rules | toYaml -}}
{{- end }}
