package providerclass

import (
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
	yaml "go.yaml.in/yaml/v3"
)

// AWS object types, as objectType is written and as Object.Type carries them.
const (
	TypeSecretsManager = "secretsmanager"
	TypeSSMParameter   = "ssmparameter"
)

// awsARNService maps the service of an object ARN to its object type. "ssm" is an
// ARN service only; as an objectType it is refused, as by the AWS provider.
var awsARNService = map[string]string{
	"secretsmanager": TypeSecretsManager,
	"ssm":            TypeSSMParameter,
}

// aws plans the AWS provider's dialect: mount-wide parameters, then the objects list.
func (b *builder) aws() error {
	params := b.plan.Parameters
	a := &AWSParameters{
		Region:         params["region"],
		FailoverRegion: params["failoverRegion"],
	}
	switch t := params["pathTranslation"]; {
	case t == "":
		a.PathTranslation = "_"
	case strings.EqualFold(t, "false"):
		a.PathTranslation = ""
	case len(t) == 1:
		a.PathTranslation = t
	default:
		return errorf("parameters.pathTranslation", "must be \"False\" or a single character")
	}
	if s := params["usePodIdentity"]; s != "" {
		v, err := strconv.ParseBool(s)
		if err != nil {
			return errorf("parameters.usePodIdentity", "must be \"true\" or \"false\"")
		}
		a.UsePodIdentity = v
	}
	switch t := strings.ToLower(params["preferredAddressType"]); t {
	case "":
		a.PreferredAddressType = "auto"
	case "ipv4", "ipv6", "auto":
		a.PreferredAddressType = t
	default:
		return errorf("parameters.preferredAddressType", "must be one of ipv4, ipv6 or auto")
	}
	if a.FailoverRegion != "" && a.FailoverRegion == a.Region {
		return errorf("parameters.failoverRegion", "must differ from region")
	}
	b.plan.AWS = a

	return b.objects(func(field string, n *yaml.Node) (Object, error) { return b.awsObject(field, n, a) })
}

func (b *builder) awsObject(field string, n *yaml.Node, a *AWSParameters) (Object, error) {
	m, err := asMapping(field, n)
	if err != nil {
		return Object{}, err
	}
	var name, typ, alias, version, label, perm string
	if err := m.strs(
		strField{"objectName", &name}, strField{"objectType", &typ}, strField{"objectAlias", &alias},
		strField{"objectVersion", &version}, strField{"objectVersionLabel", &label},
		strField{"filePermission", &perm},
	); err != nil {
		return Object{}, err
	}
	if name == "" {
		return Object{}, errorf(field+".objectName", "is required")
	}
	objType, err := awsObjectType(field+".objectName", field+".objectType", name, typ, a.Region, "region")
	if err != nil {
		return Object{}, err
	}
	if objType == TypeSSMParameter && version != "" && label != "" {
		return Object{}, errorf(field+".objectVersionLabel", "cannot be set with objectVersion for an SSM parameter")
	}
	obj := Object{Field: field, Name: name, Type: objType, Version: version, VersionLabel: label}

	obj.Failover, err = awsFailover(field, m, objType, obj, alias, a)
	if err != nil {
		return Object{}, err
	}

	// File names as the AWS provider makes them: the alias or the name, with "/"
	// translated, or with leading slashes stripped when translation is off.
	translate := func(s string) string {
		if a.PathTranslation == "" {
			return strings.TrimLeft(s, "/")
		}
		return strings.ReplaceAll(s, "/", a.PathTranslation)
	}
	allowSlash := a.PathTranslation == "" || a.PathTranslation == "/"
	nameField := field + ".objectName"
	if alias != "" {
		nameField = field + ".objectAlias"
		obj.File = translate(alias)
	} else {
		obj.File = translate(name)
	}
	if err := b.claim(nameField, obj.File, allowSlash); err != nil {
		return Object{}, err
	}
	if obj.Mode, err = fileMode(field+".filePermission", perm, b.mode); err != nil {
		return Object{}, err
	}
	jp, err := m.list("jmesPath")
	if err != nil {
		return Object{}, err
	}
	if obj.Extractions, err = b.extractions(field, jp, obj.Mode, translate, allowSlash); err != nil {
		return Object{}, err
	}
	return obj, nil
}

// awsObjectType checks objectName against objectType and returns the object's type:
// the objectType as written, or the one an ARN implies. An ARN must be in region
// (when the class names one; otherwise the backend checks against its default).
func awsObjectType(nameField, typeField, name, typ, region, regionParam string) (string, error) {
	var arnType string
	if strings.HasPrefix(name, "arn:") {
		parsed, err := arn.Parse(name)
		if err != nil {
			return "", errorf(nameField, "is not a valid ARN")
		}
		t, ok := awsARNService[parsed.Service]
		if !ok {
			return "", errorf(nameField, "ARN service %q is neither secretsmanager nor ssm", parsed.Service)
		}
		if region != "" && parsed.Region != region {
			return "", errorf(nameField, "ARN region %q does not match the %s parameter %q", parsed.Region, regionParam, region)
		}
		arnType = t
	}
	switch typ {
	case "":
		if arnType == "" {
			return "", errorf(typeField, "is required unless objectName is a full ARN")
		}
		return arnType, nil
	case TypeSecretsManager, TypeSSMParameter:
		if arnType != "" && arnType != typ {
			return "", errorf(typeField, "%q does not match the ARN's service (%s)", typ, arnType)
		}
		return typ, nil
	default:
		return "", errorf(typeField, "unknown objectType %q: must be secretsmanager or ssmparameter", typ)
	}
}

// awsFailover reads failoverObject, which the AWS provider allows only with a
// failoverRegion and an objectAlias (so both regions write the same file).
func awsFailover(field string, m *mapping, objType string, obj Object, alias string, a *AWSParameters) (*FailoverObject, error) {
	fn, ok := m.node("failoverObject")
	if !ok {
		return nil, nil
	}
	ff := field + ".failoverObject"
	fm, err := asMapping(ff, fn)
	if err != nil {
		return nil, err
	}
	var f FailoverObject
	if err := fm.strs(
		strField{"objectName", &f.Name}, strField{"objectVersion", &f.Version},
		strField{"objectVersionLabel", &f.VersionLabel},
	); err != nil {
		return nil, err
	}
	if f == (FailoverObject{}) {
		return nil, nil
	}
	if f.Name == "" {
		return nil, errorf(ff+".objectName", "is required")
	}
	if alias == "" {
		return nil, errorf(field+".objectAlias", "is required when failoverObject is set")
	}
	if a.FailoverRegion == "" {
		return nil, errorf(ff, "needs the failoverRegion parameter")
	}
	if _, err := awsObjectType(ff+".objectName", ff+".objectName", f.Name, objType, a.FailoverRegion, "failoverRegion"); err != nil {
		return nil, err
	}
	if objType == TypeSSMParameter && f.Version != "" && f.VersionLabel != "" {
		return nil, errorf(ff+".objectVersionLabel", "cannot be set with objectVersion for an SSM parameter")
	}
	if f.Version != obj.Version {
		return nil, errorf(ff+".objectVersion", "must match the object's objectVersion")
	}
	return &f, nil
}
