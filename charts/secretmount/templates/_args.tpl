{{/*
The flags each secretmount role is started with. They must be exactly the flags the
subcommands define (cmd/secretmount/app); test/install parses them with the real
commands, so a renamed or removed flag fails the tests rather than a rollout.
*/}}

{{/* port: the port of a listen address such as ":8095" or "0.0.0.0:8095". */}}
{{- define "secretmount.port" -}}
{{- last (splitList ":" .) -}}
{{- end -}}

{{/* metricsOn: non-empty when a metrics listen address is set ("" and "0" switch it off). */}}
{{- define "secretmount.metricsOn" -}}
{{- if and . (ne . "0") }}true{{ end -}}
{{- end -}}

{{- define "secretmount.logArgs" -}}
- --v={{ .Values.logVerbosity }}
- --log-format={{ ternary "json" "text" .Values.logFormatJSON }}
{{- end -}}

{{/* backendArgs: the flags of the built-in backends, the same for every role. */}}
{{- define "secretmount.backendArgs" -}}
{{- with .Values.providers.aws }}
{{- if .enabled }}
{{- with .region }}
- --aws-region={{ . }}
{{- end }}
{{- with .endpoint }}
- --aws-endpoint={{ . }}
{{- end }}
{{- with .podIdentityAgentEndpoint }}
- --aws-pod-identity-agent-endpoint={{ . }}
{{- end }}
{{- if .disableBatchGet }}
- --aws-disable-batch-get=true
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.providers.vault }}
{{- if .enabled }}
- --vault-version-key-secret={{ $.Release.Namespace }}/{{ include "secretmount.vaultHMACSecret" $ }}
{{- with .address }}
- --vault-address={{ . }}
{{- end }}
{{- if .renewFraction }}
- --vault-renew-fraction={{ .renewFraction }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* disabledBackends: built-in backends switched off, so a plugin of that name serves. */}}
{{- define "secretmount.disabledBackends" -}}
{{- $off := list -}}
{{- if not .Values.providers.aws.enabled }}{{ $off = append $off "aws" }}{{ end -}}
{{- if not .Values.providers.vault.enabled }}{{ $off = append $off "vault" }}{{ end -}}
{{- join "," $off -}}
{{- end -}}

{{- define "secretmount.driverArgs" -}}
- driver
- --endpoint=unix:///csi/csi.sock
- --driver-name={{ .Values.driverName }}
- --node-id=$(NODE_NAME)
- --state-dir=/csi/state
- --enable-secret-rotation={{ .Values.enableSecretRotation }}
- --rotation-poll-interval={{ .Values.rotationPollInterval }}
- --enable-secret-sync={{ .Values.syncSecret.enabled }}
- --metrics-addr={{ .Values.linux.metricsAddr }}
- --kube-api-qps={{ .Values.linux.driver.kubeAPIQPS }}
- --kube-api-burst={{ .Values.linux.driver.kubeAPIBurst }}
{{- if .Values.linux.registrar.builtin }}
- --registration-dir=/registration
- --kubelet-endpoint={{ include "secretmount.pluginDir" . }}/csi.sock
{{- end }}
{{ include "secretmount.logArgs" . }}
- --provider-volume={{ join "," (prepend .Values.linux.additionalProvidersDirs .Values.linux.providersDir) }}
{{- with include "secretmount.disabledBackends" . }}
- --disable-builtin-provider={{ . }}
{{- end }}
{{- include "secretmount.backendArgs" . }}
{{- end -}}

{{- define "secretmount.syncArgs" -}}
- sync
- --leader-elect={{ .Values.syncController.leaderElection }}
- --leader-election-namespace={{ .Release.Namespace }}
- --rotation-poll-interval={{ .Values.rotationPollInterval }}
- --metrics-addr={{ .Values.syncController.metricsAddr }}
- --health-addr={{ .Values.syncController.healthAddr }}
- --max-concurrent-reconciles={{ .Values.syncController.maxConcurrentReconciles }}
- --kube-api-qps={{ .Values.syncController.kubeAPIQPS }}
- --kube-api-burst={{ .Values.syncController.kubeAPIBurst }}
{{- with .Values.syncController.watchNamespace }}
- --namespace={{ . }}
{{- end }}
{{ include "secretmount.logArgs" . }}
{{- include "secretmount.backendArgs" . }}
{{- end -}}


{{/*
env: the environment of a secretmount container beyond the pod fields, from a dict
with its "resources" and the user's "env" list. It sets GOMEMLIMIT when the resources
set limits.memory, so the Go collector works harder as the heap nears the limit
instead of the container being OOM-killed first. With divisor 1 the downward API
gives the limit as a plain integer of bytes, a form GOMEMLIMIT takes; any larger
divisor would give a count Go reads as bytes, so there is no headroom below the
limit — set GOMEMLIMIT in env for some. Without a memory limit nothing is set: the
downward API would give the node's allocatable memory, a ceiling the container never
nears. The user's entries follow, so one of the same name is the only one.
*/}}
{{- define "secretmount.env" -}}
{{- $own := dict -}}
{{- range .env }}{{ $_ := set $own .name true }}{{ end -}}
{{- $env := list -}}
{{- if and (not (hasKey $own "GOMEMLIMIT")) (dig "limits" "memory" "" (.resources | default dict)) -}}
{{- $env = append $env (dict "name" "GOMEMLIMIT" "valueFrom" (dict "resourceFieldRef" (dict "resource" "limits.memory" "divisor" "1"))) -}}
{{- end -}}
{{- $env = concat $env (.env | default list) -}}
{{- with $env }}{{ toYaml . }}{{ end -}}
{{- end -}}
