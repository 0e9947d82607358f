// Package plugin speaks the provider gRPC API of the Secrets Store CSI Driver
// (sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1, CSIDriverProvider) both ways.
//
// The client side (Clients, Client) is a provider.FileProvider for any spec.provider with
// no built-in backend: it calls <providers-dir>/<name>.sock with the request the upstream
// driver would send, under the caller's deadline, and returns the files the provider made
// after checking every path. It never writes a file itself.
//
// The server side (Server) lets the upstream driver use our backends: it decodes a Mount
// request exactly as the upstream driver encodes it, plans it with providerclass, fetches
// through a provider.Registry, renders, and answers with files and object versions.
//
// Neither side logs, or puts in an error, a secret value or a token.
package plugin
