// Package providerclass turns a SecretProviderClass (secrets-store.csi.x-k8s.io/v1)
// and the context of one mount into a validated Plan: the objects to fetch, the file
// each lands in with its mode, the JMESPath extractions and the secretObjects to sync.
// It accepts the parameter dialects of the upstream AWS and Vault providers unchanged
// (spec.provider "aws" and "vault"); any other provider's parameters are passed
// through for an external plugin to judge, and only its secretObjects are checked.
//
// The package is pure: it does no network or disk I/O, and it never sees a credential.
// Every rejection is an *Error that names the SecretProviderClass and the field path.
//
// File names. The AWS dialect names files as the AWS provider does: objectAlias or
// objectName with "/" replaced by pathTranslation ("_" unless set; "False" keeps "/"
// and strips leading slashes). The Vault dialect uses objectName as the path. Every
// name passes ValidateFileName, which the driver's writer and the provider-API server
// reuse for names that come from providers. Two objects or extractions that would
// write the same file are refused, even where the AWS provider would let the second
// overwrite the first.
//
// Extractions. Each jmesPath entry is compiled when the plan is made and evaluated by
// Render against the object's JSON document. A string result is written as it is,
// without quotes. A number or boolean is written in its JSON form ("5432", "true"),
// where the AWS provider refuses it: numbers are decoded as float64 (the JMESPath
// library compares only float64), so integers beyond 2^53 lose precision and should
// be stored as strings. A null, missing, object or array result is an error naming
// the object and the extraction, never the value.
//
// Vault objects may carry the same jmesPath list as AWS objects, reaching nested
// keys the Vault provider's secretKey cannot.
package providerclass
