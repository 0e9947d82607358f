package providerclass

import (
	"errors"

	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
)

// NewPlan validates spc for one mount and returns its plan, or an *Error naming the
// offending field.
func NewPlan(spc *secretsstorev1.SecretProviderClass, mount Mount) (*Plan, error) {
	return nil, errors.New("providerclass: planner not built yet")
}

// Render turns fetched contents (one per p.Objects entry, same order) into the files of
// the mount: each object's own file and one per extraction. It fails, writing nothing,
// if any extraction fails.
func (p *Plan) Render(contents []ObjectContent) ([]File, error) {
	return nil, errors.New("providerclass: renderer not built yet")
}
