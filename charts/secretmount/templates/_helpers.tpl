{{/* fullname: the release name, with the chart name appended unless already in it. */}}
{{- define "secretmount.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "secretmount.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* selectorLabels: call with (dict "ctx" $ "component" "driver"). */}}
{{- define "secretmount.selectorLabels" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "secretmount.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "secretmount.driverServiceAccount" -}}
{{- default (printf "%s-driver" (include "secretmount.fullname" .)) .Values.serviceAccounts.driver.name -}}
{{- end -}}

{{- define "secretmount.syncServiceAccount" -}}
{{- default (printf "%s-sync" (include "secretmount.fullname" .)) .Values.serviceAccounts.sync.name -}}
{{- end -}}

{{/* pluginDir: the kubelet folder that holds the driver's CSI socket. */}}
{{- define "secretmount.pluginDir" -}}
{{- printf "%s/plugins/csi-secrets-store" (trimSuffix "/" .Values.linux.kubeletRootDir) -}}
{{- end -}}

{{- define "secretmount.vaultHMACSecret" -}}
{{- default "secretmount-vault-version-key" .Values.providers.vault.versionKeySecretName -}}
{{- end -}}
