{{/*
The flags each secretmount role is started with. They must be exactly the flags the
subcommands define (cmd/secretmount/app); test/install parses them with the real
commands, so a renamed or removed flag fails the tests rather than a rollout.
*/}}

{{/* port: the port of a listen address such as ":8095" or "0.0.0.0:8095". */}}
{{- define "secretmount.port" -}}
{{- last (splitList ":" .) -}}
{{- end -}}

{{- define "secretmount.logArgs" -}}
- --v={{ .Values.logVerbosity }}
- --log-format={{ ternary "json" "text" .Values.logFormatJSON }}
{{- end -}}

{{- define "secretmount.providerArgs" -}}
{{- with .Values.providers.aws }}
{{- if .region }}
- --aws-region={{ .region }}
{{- end }}
{{- if .endpoint }}
- --aws-endpoint={{ .endpoint }}
{{- end }}
{{- if .podIdentityAgentEndpoint }}
- --aws-pod-identity-agent-endpoint={{ .podIdentityAgentEndpoint }}
{{- end }}
{{- end }}
{{- with .Values.providers.vault }}
{{- if .address }}
- --vault-address={{ .address }}
{{- end }}
{{- if .hmacKeySecretName }}
- --vault-hmac-key-secret={{ .hmacKeySecretName }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "secretmount.driverArgs" -}}
- driver
- --endpoint=unix:///csi/csi.sock
- --driver-name={{ .Values.driverName }}
- --node-id=$(NODE_NAME)
- --enable-secret-rotation={{ .Values.enableSecretRotation }}
- --rotation-poll-interval={{ .Values.rotationPollInterval }}
- --metrics-addr={{ .Values.linux.metricsAddr }}
{{ include "secretmount.logArgs" . }}
{{- include "secretmount.providerArgs" . }}
{{- end -}}

{{- define "secretmount.syncArgs" -}}
- sync
- --leader-elect={{ .Values.syncController.leaderElection }}
- --leader-election-namespace={{ .Release.Namespace }}
- --rotation-poll-interval={{ .Values.rotationPollInterval }}
- --metrics-addr={{ .Values.syncController.metricsAddr }}
- --health-addr={{ .Values.syncController.healthAddr }}
{{- with .Values.syncController.watchNamespace }}
- --namespace={{ . }}
{{- end }}
{{ include "secretmount.logArgs" . }}
{{- include "secretmount.providerArgs" . }}
{{- end -}}
