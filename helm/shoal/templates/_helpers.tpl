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

{{/* SHOAL_ALLOWED_SERVICE_ACCOUNTS: the listed names plus the chart's worker account. */}}
{{- define "shoal.allowedServiceAccounts" -}}
{{- $names := .Values.workflowServiceAccounts.allowed | default list -}}
{{- if .Values.worker.serviceAccount.create -}}
{{- $names = append $names .Values.worker.serviceAccount.name -}}
{{- end -}}
{{- join "," (uniq $names) -}}
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
# Templates: the operator and the admission webhook read those a Workflow names.
- apiGroups: [shoal.dev]
  resources: [workflowtemplates]
  verbs: [get, list, watch]
- apiGroups: [shoal.dev]
  resources: [workflows/status, cronworkflows/status]
  verbs: [patch, update]
# Jobs are owned by their Workflow with blockOwnerDeletion, which needs this.
- apiGroups: [shoal.dev]
  resources: [workflows/finalizers]
  verbs: [update]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [create, delete, deletecollection, get, list, watch]
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
# synchronization and memoize: the lock table and the memo cache, one Lease each per
# namespace (docs/flow-control.md). Creating cannot be limited by name; reading and
# writing is, to these two.
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [create]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  resourceNames: [shoal-locks, shoal-memo]
  verbs: [get, update]
{{- if .Values.workflowServiceAccounts.selector }}
# workflowServiceAccounts.selector: the operator reads a named ServiceAccount's labels.
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get]
{{- end }}
{{- if and .Values.rbac.secretNames (not .Values.rbac.readSecrets) }}
# rbac.secretNames: only these Secrets, by name.
- apiGroups: [""]
  resources: [secrets]
  resourceNames: {{ toJson .Values.rbac.secretNames }}
  verbs: [get]
{{- end }}
{{- if .Values.rbac.readSecrets }}
# A Workflow's own artifact credentials (spec.artifacts.store.credentialsSecret): the
# operator reads that Secret by name to use the store for the run (values.yaml).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
{{- end }}
{{- end -}}


{{/* The artifact store (SHOAL_ARTIFACTS and friends; docs/packaging.md). Credentials only
ever come from a Secret through secretKeyRef: no value in this chart holds one. */}}
{{- define "shoal.artifactsEnv" -}}
{{- $a := .Values.artifacts -}}
{{- if $a.url }}
{{- if not (hasPrefix "s3://" $a.url) }}
{{- fail (printf "artifacts.url: %q must be s3://bucket[/prefix]" $a.url) }}
{{- end }}
- name: SHOAL_ARTIFACTS
  value: {{ $a.url | quote }}
{{- if $a.endpoint }}
- name: SHOAL_S3_ENDPOINT
  value: {{ $a.endpoint | quote }}
{{- end }}
{{- if $a.region }}
- name: SHOAL_S3_REGION
  value: {{ $a.region | quote }}
{{- end }}
{{- $pathStyle := toString $a.pathStyle }}
{{- if ne $pathStyle "" }}
{{- if not (has $pathStyle (list "true" "false")) }}
{{- fail (printf "artifacts.pathStyle: %q must be true, false or empty (path-style exactly when an endpoint is set)" $pathStyle) }}
{{- end }}
- name: SHOAL_S3_PATH_STYLE
  value: {{ $pathStyle | quote }}
{{- end }}
{{- $verify := toString $a.verify }}
{{- if and (ne $verify "true") (ne $verify "") }}
- name: SHOAL_S3_VERIFY
  value: {{ $verify | quote }}
{{- end }}
{{- with $a.existingSecret }}
- name: SHOAL_ARTIFACTS_CREDENTIALS_SECRET
  value: {{ . | quote }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: accessKeyId
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: secretAccessKey
{{- end }}
{{- else if or $a.endpoint $a.existingSecret }}
{{- fail "artifacts.endpoint and artifacts.existingSecret need artifacts.url (s3://bucket[/prefix])" }}
{{- end }}
{{- end -}}

{{/* The webhook's namespaces, quoted and comma-separated: the watched ones, or empty
(every namespace) when cluster-wide without a list or with globs, which a label selector
cannot express. */}}
{{- define "shoal.webhookNamespaces" -}}
{{- $names := list -}}
{{- if or (not .Values.clusterWide) .Values.watchNamespaces -}}
{{- $names = splitList "," (include "shoal.roleNamespaces" .) -}}
{{- end -}}
{{- $globs := false -}}
{{- range $names -}}
{{- if regexMatch "[*?!\\[\\],]" . -}}{{- $globs = true -}}{{- end -}}
{{- end -}}
{{- if not $globs -}}
{{- $quoted := list -}}
{{- range $names -}}{{- $quoted = append $quoted (quote .) -}}{{- end -}}
{{- join ", " $quoted -}}
{{- end -}}
{{- end -}}

{{/* `shoal server` (server.enabled): its own names, labels and ServiceAccount. Its
selector differs from the operator's, so neither's Service picks the other's pods. */}}
{{- define "shoal.serverName" -}}
{{- if contains "shoal" .Release.Name -}}
{{- printf "%s-server" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-shoal-server" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "shoal.serverServiceAccountName" -}}
{{- default (include "shoal.serverName" .) .Values.server.serviceAccount.name -}}
{{- end -}}

{{- define "shoal.serverSelectorLabels" -}}
app.kubernetes.io/name: shoal-server
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "shoal.serverLabels" -}}
{{ include "shoal.serverSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: shoal
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* What the server reads with its own identity: exactly what it streams to callers
(each of whom a SubjectAccessReview checks first). Read-only. */}}
{{- define "shoal.serverRules" -}}
- apiGroups: [shoal.dev]
  resources: [workflows, cronworkflows]
  verbs: [get, list, watch]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods, events]
  verbs: [get, list, watch]
{{- end -}}
