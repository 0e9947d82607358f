package v1alpha1

// Condition types of SecretSync status, as the sync controller's API documents them.
const (
	// ConditionCreate reports the creation of the Secret.
	ConditionCreate = "Create"
	// ConditionUpdate reports the later synchronisations of the Secret.
	ConditionUpdate = "Update"
)

// Condition reasons. The success reasons are True; every other reason is False.
const (
	ReasonCreateSucceeded                      = "CreateSucceeded"
	ReasonNoValueChange                        = "NoValueChange"
	ReasonValueChangeOrForceUpdateDetected     = "ValueChangeOrForceUpdateDetected"
	ReasonProviderError                        = "ProviderError"
	ReasonInvalidClusterSecretLabelError       = "InvalidClusterSecretLabelError"
	ReasonInvalidClusterSecretAnnotationError  = "InvalidClusterSecretAnnotationError"
	ReasonUnknownError                         = "UnknownError"
	ReasonValidatingAdmissionPolicyCheckFailed = "ValidatingAdmissionPolicyCheckFailed"
	ReasonUserInputValidationFailed            = "UserInputValidationFailed"
	ReasonControllerSPCError                   = "ControllerSPCError"
	ReasonControllerInternalError              = "ControllerInternalError"
	// ReasonSecretNotOwned is an extension: the Secret exists and was not created by
	// secretmount, and nobody allowed secretmount to take it over.
	ReasonSecretNotOwned = "SecretNotOwned"
)

// Reserved prefix of labels and annotations: users may not set these keys in
// spec.secretObject; the controller sets SecretSyncLabel itself.
const (
	ReservedPrefix  = "secrets-store.sync.x-k8s.io/"
	SecretSyncLabel = ReservedPrefix + "secretsync"
)
