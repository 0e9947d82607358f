package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SecretSync asks for one Kubernetes Secret, named like the SecretSync and in its
// namespace, filled from the objects of a SecretProviderClass of that namespace, fetched
// with a ServiceAccount of that namespace. No pod needs to mount anything.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:storageversion
// +kubebuilder:printcolumn:name="Class",type=string,JSONPath=`.spec.secretProviderClassName`
// +kubebuilder:printcolumn:name="ServiceAccount",type=string,JSONPath=`.spec.serviceAccountName`
// +kubebuilder:printcolumn:name="Last sync",type=date,JSONPath=`.status.lastSuccessfulSyncTime`
type SecretSync struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SecretSyncSpec   `json:"spec,omitempty"`
	Status SecretSyncStatus `json:"status,omitempty"`
}

// SecretSyncList is a list of SecretSyncs.
//
// +kubebuilder:object:root=true
type SecretSyncList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SecretSync `json:"items"`
}

// SecretSyncSpec is what to fetch, as whom, and the Secret to make of it.
type SecretSyncSpec struct {
	// secretSyncControllerName names the controller meant to serve this SecretSync; ""
	// (the default) means any. Kept for compatibility with the upstream API.
	// +optional
	// +kubebuilder:default:=""
	SecretSyncControllerName string `json:"secretSyncControllerName"`

	// secretProviderClassName is the SecretProviderClass, in this namespace, that says
	// what to fetch from which provider.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +required
	SecretProviderClassName string `json:"secretProviderClassName"`

	// serviceAccountName is the ServiceAccount, in this namespace, whose token the
	// controller requests (TokenRequest) to authenticate to the provider. The token's
	// audience is the provider's: sts.amazonaws.com for aws, the class's audience
	// parameter (default "vault") for vault.
	//
	// The schema accepts any non-empty string so that a name that points at another
	// namespace ("system:serviceaccount:<ns>:<name>", "<ns>/<name>") reaches the
	// controller and is refused there with a condition that says why.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	ServiceAccountName string `json:"serviceAccountName"`

	// secretObject is the Secret to write.
	// +required
	SecretObject SecretObject `json:"secretObject"`

	// forceSynchronization, when changed to any new value, makes the controller fetch
	// and write again now instead of at the next poll.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9]+([-._a-zA-Z0-9]?[A-Za-z0-9])*)?$`
	// +optional
	ForceSynchronization string `json:"forceSynchronization,omitempty"`
}

// SecretObject is the shape of the synced Secret. Type, labels and annotations are kept in
// step with this spec on every synchronisation, not only on creation.
type SecretObject struct {
	// type is the Secret's type, e.g. Opaque or kubernetes.io/basic-auth.
	// +kubebuilder:default:=Opaque
	// +kubebuilder:validation:Pattern=`^[^\s]+$`
	// +optional
	Type string `json:"type,omitempty"`

	// data lists the Secret's keys and where each value comes from.
	// +kubebuilder:validation:MinItems=1
	// +listType=map
	// +listMapKey=targetKey
	// +required
	Data []SecretObjectData `json:"data"`

	// labels are set on the Secret. Keys with the prefix secrets-store.sync.x-k8s.io/ are
	// reserved for the controller.
	// +kubebuilder:validation:XValidation:message="labels must not use the reserved prefix secrets-store.sync.x-k8s.io/",rule="self.all(k, !k.startsWith('secrets-store.sync.x-k8s.io/'))"
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// annotations are set on the Secret. Keys with the prefix secrets-store.sync.x-k8s.io/
	// are reserved for the controller.
	// +kubebuilder:validation:XValidation:message="annotations must not use the reserved prefix secrets-store.sync.x-k8s.io/",rule="self.all(k, !k.startsWith('secrets-store.sync.x-k8s.io/'))"
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// SecretObjectData is one key of the Secret. Its value is either one fetched file,
// byte for byte (sourcePath), or a template over the fetched files (template).
//
// +kubebuilder:validation:XValidation:message="exactly one of sourcePath and template must be set",rule="has(self.sourcePath) != has(self.template)"
type SecretObjectData struct {
	// sourcePath is the path of a file the SecretProviderClass produces: an objectName,
	// an objectAlias, or a jmesPath objectAlias. The value is that file's bytes exactly.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +optional
	SourcePath string `json:"sourcePath,omitempty"`

	// targetKey is the key in the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +required
	TargetKey string `json:"targetKey"`

	// template is a secretmount extension: a Go text/template whose output is the value.
	// Its data is the fetched files: {{ file "db-password" }} is one file's content, and
	// .Files is the map of every file path to its content. Helper functions:
	// pathEscape and queryEscape (net/url escaping, for postgresql:// URIs), pgpass
	// (escapes \ and : for a .pgpass field), json (a JSON string literal), base64,
	// trimSpace and trimNewline. A missing file is an error, never an empty string. The
	// output is used byte for byte: there is a trailing newline only if the template
	// writes one.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=65536
	// +optional
	Template string `json:"template,omitempty"`
}

// SecretSyncStatus is what the controller last did.
type SecretSyncStatus struct {
	// syncHash identifies what was last written: an HMAC-SHA256, keyed by the
	// SecretSync's UID, over the Secret's type, labels, annotations and data, the
	// SecretProviderClass's UID and generation and the SecretSync's generation and
	// forceSynchronization. It changes when any of those change and reveals none of
	// them.
	// +optional
	SyncHash string `json:"syncHash,omitempty"`

	// lastSuccessfulSyncTime is when the Secret was last written, or last confirmed in
	// step after a failure. A poll that finds nothing changed writes nothing, status
	// included.
	// +optional
	LastSuccessfulSyncTime *metav1.Time `json:"lastSuccessfulSyncTime,omitempty"`

	// conditions are Create (the Secret's creation) and Update (later polls), with the
	// reasons of the upstream API: CreateSucceeded, NoValueChange,
	// ValueChangeOrForceUpdateDetected when True; ProviderError, ControllerSPCError,
	// UserInputValidationFailed, InvalidClusterSecretLabelError,
	// InvalidClusterSecretAnnotationError, ControllerInternalError, UnknownError, and the
	// extension SecretNotOwned when False.
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}
