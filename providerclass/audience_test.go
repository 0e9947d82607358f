package providerclass

import "testing"

func TestTokenAudience(t *testing.T) {
	tests := []struct {
		name string
		plan Plan
		want string
	}{
		{"aws web identity", Plan{AWS: &AWSParameters{}}, AudienceSTS},
		{"aws pod identity", Plan{AWS: &AWSParameters{UsePodIdentity: true}}, AudiencePodIdentity},
		{"vault default", Plan{Vault: &VaultParameters{}}, DefaultVaultAudience},
		{"vault own audience", Plan{Vault: &VaultParameters{Audience: "https://vault.example"}}, "https://vault.example"},
		{"external", Plan{Dialect: DialectExternal}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.plan.TokenAudience(); got != tt.want {
				t.Errorf("TokenAudience() = %q, want %q", got, tt.want)
			}
		})
	}
}
