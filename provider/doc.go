// Package provider defines what a secrets backend is (Provider), the registry that picks
// one by spec.provider, the identity a fetch is made with, and the coalescing that turns
// a burst of identical fetches into one backend call.
//
// Backends live in sub-packages (aws, vault, plugin). They classify their failures with
// the error kinds of this package; gRPC codes are chosen at the CSI boundary, not here.
// Content is never shared between identities.
package provider
