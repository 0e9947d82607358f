package providerclass

import (
	"fmt"

	"k8s.io/apimachinery/pkg/types"
)

// Error is a rejected SecretProviderClass: which one, which field, and why. It never
// carries a secret value.
type Error struct {
	Class  types.NamespacedName
	Field  string // e.g. "objects[1].jmesPath[0].objectAlias"
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid SecretProviderClass %s: %s: %s", e.Class, e.Field, e.Reason)
}
