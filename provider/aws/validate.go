package aws

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

const (
	typeSecretsManager = "secretsmanager"
	typeParameter      = "ssmparameter"
)

// newFetch checks what the planner cannot know (the driver's default region) and what
// this backend relies on, and resolves the regions.
func (b *Backend) newFetch(plan *providerclass.Plan, id provider.Identity) (*fetch, error) {
	if plan == nil {
		return nil, fmt.Errorf("aws backend: no plan: %w", provider.ErrInvalid)
	}
	f := &fetch{plan: plan, id: id, results: make([]providerclass.ObjectContent, len(plan.Objects))}
	if plan.AWS == nil {
		return nil, fmt.Errorf("%s: provider aws needs the aws parameter schema (dialect %q): %w", f.class(), plan.Dialect, provider.ErrInvalid)
	}
	f.params = *plan.AWS
	primary := f.params.Region
	if primary == "" {
		primary = b.opts.DefaultRegion
	}
	if primary == "" {
		primary = b.base.Region
	}
	if primary == "" {
		return nil, fmt.Errorf("%s: parameters.region: no region in the class and no default region configured: %w", f.class(), provider.ErrInvalid)
	}
	f.regions = []string{primary}
	if fr := f.params.FailoverRegion; fr != "" {
		if fr == primary {
			return nil, fmt.Errorf("%s: parameters.failoverRegion: %s is also the primary region: %w", f.class(), fr, provider.ErrInvalid)
		}
		f.regions = append(f.regions, fr)
	}
	for i, o := range plan.Objects {
		if err := f.checkObject(i, o); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (f *fetch) checkObject(i int, o providerclass.Object) error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%s: %s.%s: %s: %w", f.class(), o.Field, field, fmt.Sprintf(format, args...), provider.ErrInvalid)
	}
	if o.Type != typeSecretsManager && o.Type != typeParameter {
		return bad("objectType", "%q is not secretsmanager or ssmparameter", o.Type)
	}
	if o.Name == "" {
		return bad("objectName", "empty")
	}
	if o.Type == typeParameter && o.Version != "" && o.VersionLabel != "" {
		return bad("objectVersionLabel", "an SSM parameter takes objectVersion or objectVersionLabel, not both")
	}
	if err := checkARNRegion(o.Name, f.regions[0]); err != nil {
		return bad("objectName", "%v", err)
	}
	if o.Failover != nil && o.Failover.Name != "" {
		if len(f.regions) < 2 {
			return bad("failoverObject", "needs parameters.failoverRegion")
		}
		if err := checkARNRegion(o.Failover.Name, f.regions[1]); err != nil {
			return bad("failoverObject.objectName", "%v", err)
		}
	}
	return nil
}

// checkARNRegion: an object named by ARN must live in the region it is read from.
func checkARNRegion(name, region string) error {
	if !strings.HasPrefix(name, "arn:") {
		return nil
	}
	a, err := arn.Parse(name)
	if err != nil {
		return fmt.Errorf("not a valid ARN")
	}
	if a.Region != region {
		return fmt.Errorf("ARN region %s is not the region %s it is read from", a.Region, region)
	}
	return nil
}

// target is an object as it is read in one region: the failover region reads the
// failoverObject when there is one.
type target struct {
	region, name, version, label string
}

func (f *fetch) target(i, region int) target {
	o := f.plan.Objects[i]
	t := target{region: f.regions[region], name: o.Name, version: o.Version, label: o.VersionLabel}
	if region > 0 && o.Failover != nil && o.Failover.Name != "" {
		t.name = o.Failover.Name
		if o.Failover.Version != "" {
			t.version = o.Failover.Version
		}
		if o.Failover.VersionLabel != "" {
			t.label = o.Failover.VersionLabel
		}
	}
	return t
}
