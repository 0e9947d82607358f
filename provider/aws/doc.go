// Package aws is the backend for `provider: aws` SecretProviderClasses: AWS Secrets
// Manager and SSM Parameter Store through aws-sdk-go-v2, with the parameter schema of the
// AWS provider for the Secrets Store CSI Driver (planned by providerclass).
//
// It owns: turning a pod's identity into AWS credentials (IRSA: the ServiceAccount
// token for audience sts.amazonaws.com and the role in the ServiceAccount annotation
// eks.amazonaws.com/role-arn, exchanged with AssumeRoleWithWebIdentity; or EKS Pod
// Identity through the agent endpoint), caching those credentials per (role, token
// subject) until shortly before they expire, fetching objects (Secrets Manager
// GetSecretValue, BatchGetSecretValue when a mount has several secrets, DescribeSecret to
// skip unchanged versions on refresh; SSM GetParameters in batches of ten), region
// failover, bounded retries, and classifying failures into the error kinds of package
// provider with messages that name the object.
//
// It must not: use the node's own credentials for a pod (ambient credentials exist only
// behind Options.AllowAmbientCredentials, for `render` and local development), share
// credentials or content between identities, put a secret value in a log or an error,
// write files, or choose gRPC codes (the CSI boundary does that).
//
// Tokens come from kubelet over the node-local CSI socket (or from the sync
// controller's TokenRequest); AWS verifies them. Credentials are reused for the same
// (role, token subject) while they are valid, so a rotated token of the same
// ServiceAccount does not cost another STS call.
package aws
