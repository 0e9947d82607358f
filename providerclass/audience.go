package providerclass

// Token audiences of the built-in dialects' identity exchanges.
const (
	// AudienceSTS is the audience of the token exchanged by AssumeRoleWithWebIdentity (IRSA).
	AudienceSTS = "sts.amazonaws.com"
	// AudiencePodIdentity is the audience the EKS Pod Identity agent accepts.
	AudiencePodIdentity = "pods.eks.amazonaws.com"
)

// TokenAudience is the ServiceAccount token audience the plan's backend authenticates
// with, or "" for external providers, which authenticate by their own means. Whoever
// mints tokens for a plan (the sync controller, render) asks for this one, so the
// audience a backend expects is decided in one place.
func (p *Plan) TokenAudience() string {
	switch {
	case p.AWS != nil && p.AWS.UsePodIdentity:
		return AudiencePodIdentity
	case p.AWS != nil:
		return AudienceSTS
	case p.Vault != nil && p.Vault.Audience != "":
		return p.Vault.Audience
	case p.Vault != nil:
		return DefaultVaultAudience
	}
	return ""
}
