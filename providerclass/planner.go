package providerclass

import (
	"errors"
	"maps"
	"os"

	"k8s.io/apimachinery/pkg/types"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
)

// NewPlan validates spc for one mount and returns its plan, or an *Error naming the
// offending field. The plan shares nothing mutable with spc, so spc may come straight
// from an informer cache.
func NewPlan(spc *secretsstorev1.SecretProviderClass, mount Mount) (*Plan, error) {
	if spc == nil {
		return nil, &Error{Field: "spec", Reason: "no SecretProviderClass given"}
	}
	class := types.NamespacedName{Namespace: spc.Namespace, Name: spc.Name}
	p, err := newPlan(spc, mount)
	if err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			return nil, &Error{Class: class, Field: fe.field, Reason: fe.reason}
		}
		return nil, &Error{Class: class, Field: "spec", Reason: err.Error()}
	}
	p.Class = class
	return p, nil
}

func newPlan(spc *secretsstorev1.SecretProviderClass, mount Mount) (*Plan, error) {
	provider := string(spc.Spec.Provider)
	if provider == "" {
		return nil, errorf("spec.provider", "is required")
	}
	// An external provider's name becomes its plugin socket's file name.
	if err := ValidateFileName(provider, false); err != nil {
		return nil, errorf("spec.provider", "%s", err.Error())
	}
	b := &builder{
		plan: &Plan{
			Provider:   provider,
			Parameters: maps.Clone(spc.Spec.Parameters),
		},
		mode:  mount.DefaultMode.Perm(),
		files: map[string]string{},
	}
	if b.mode == 0 {
		b.mode = DefaultFileMode
	}
	if b.plan.Parameters == nil {
		b.plan.Parameters = map[string]string{}
	}
	var err error
	switch provider {
	case string(DialectAWS):
		b.plan.Dialect = DialectAWS
		err = b.aws()
	case string(DialectVault):
		b.plan.Dialect = DialectVault
		err = b.vault()
	default:
		b.plan.Dialect = DialectExternal
	}
	if err != nil {
		return nil, err
	}
	if err := b.secretObjects(spc.Spec.SecretObjects); err != nil {
		return nil, err
	}
	return b.plan, nil
}

// builder carries what the dialects share while a plan is made: the default mode and
// the output files claimed so far (file name → field that claimed it).
type builder struct {
	plan  *Plan
	mode  os.FileMode
	files map[string]string
}

// claim validates an output file name and reserves it, so that no two objects or
// extractions write the same file.
func (b *builder) claim(field, name string, allowSlash bool) error {
	if err := ValidateFileName(name, allowSlash); err != nil {
		return errorf(field, "file name %s", err.Error())
	}
	if other, dup := b.files[name]; dup {
		return errorf(field, "file name %q is already used by %s", name, other)
	}
	b.files[name] = field
	return nil
}

// fileMode reads an optional filePermission, falling back to def.
func fileMode(field, s string, def os.FileMode) (os.FileMode, error) {
	if s == "" {
		return def, nil
	}
	m, err := parseMode(s)
	if err != nil {
		return 0, errorf(field, "%s", err.Error())
	}
	return m, nil
}
