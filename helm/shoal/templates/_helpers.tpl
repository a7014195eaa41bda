{{/* Names and labels. */}}
{{- define "shoal.fullname" -}}
{{- if contains "shoal" .Release.Name -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-shoal-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "shoal.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "shoal.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "shoal.selectorLabels" -}}
app.kubernetes.io/name: shoal-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "shoal.labels" -}}
{{ include "shoal.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: shoal
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The namespaces that get a Role: watchNamespaces, or the release namespace. */}}
{{- define "shoal.roleNamespaces" -}}
{{- if .Values.watchNamespaces -}}
{{- join "," .Values.watchNamespaces -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* SHOAL_NAMESPACES: empty (all) only when cluster-wide without a list. */}}
{{- define "shoal.watchEnv" -}}
{{- if .Values.clusterWide -}}
{{- join "," .Values.watchNamespaces -}}
{{- else -}}
{{- include "shoal.roleNamespaces" . -}}
{{- end -}}
{{- end -}}

{{/* The operator's permissions: exactly the API calls it makes (docs/packaging.md). */}}
{{- define "shoal.rules" -}}
# Workflows: kopf watches them and patches finalizers and annotations; the runner reads
# them; cron creates runs; TTL, history limits and Replace delete them.
- apiGroups: [shoal.dev]
  resources: [workflows, cronworkflows]
  verbs: [get, list, watch, patch, update]
- apiGroups: [shoal.dev]
  resources: [workflows]
  verbs: [create, delete]
- apiGroups: [shoal.dev]
  resources: [workflows/status, cronworkflows/status]
  verbs: [patch, update]
# Jobs are owned by their Workflow with blockOwnerDeletion, which needs this.
- apiGroups: [shoal.dev]
  resources: [workflows/finalizers]
  verbs: [update]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [create, delete, get, list, watch]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
# kopf posts Events through core/v1.
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end -}}
