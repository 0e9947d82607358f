// Package sync writes Kubernetes Secrets from secrets fetched through the provider
// registry, with or without a mounting pod.
//
// It owns three ways in and one way out:
//
//   - SecretSync (secret-sync.x-k8s.io/v1alpha1): the Controller fetches the objects of
//     the named SecretProviderClass as the named ServiceAccount of the SecretSync's own
//     namespace (TokenRequest; audience sts.amazonaws.com for aws, the class's audience or
//     "vault" for vault) and writes the Secret named like the SecretSync. It is never asked
//     to act across namespaces and refuses a ServiceAccount name that points elsewhere.
//   - Mount-driven sync: MountSync is the driver's Observer; it writes the secretObjects of
//     a published volume's SecretProviderClass into the pod's namespace from the files the
//     driver rendered, byte for byte. It queues the work and never blocks the mount.
//   - Rotation: every poll interval each SecretSync is synced again; fetches of one
//     (identity, SecretProviderClass) are shared within a tick, so a backend sees one call
//     per object per tick however many SecretSyncs use it. Several SecretSyncs are synced
//     at once (Config.MaxConcurrentReconciles); concurrent TokenRequests of one
//     ServiceAccount and audience are shared too. A pass that finds the Secret in step
//     writes nothing, status included; a success emits no event (its condition says it).
//   - The Writer is the only code that writes Secrets: server-side apply with field manager
//     "secretmount", a write only when type, labels, annotations or data differ from the
//     live Secret, and never over a Secret secretmount did not create unless that Secret
//     carries the annotation secretmount.io/adopt: "true".
//
// Templated keys: a SecretSync data entry may set template instead of sourcePath. The
// template is Go text/template; its data is the fetched files ({{ file "db-password" }} or
// .Files), with the helpers pathEscape, queryEscape, pgpass, json, base64, trimSpace and
// trimNewline. Example, a postgresql:// URI and a .pgpass line:
//
//	postgresql://{{ file "db-username" | pathEscape }}:{{ file "db-password" | pathEscape }}@db:5432/app
//	db:5432:app:{{ file "db-username" | pgpass }}:{{ file "db-password" | pgpass }}
//
// The output is used byte for byte: no newline unless the template writes one.
//
// Clean-up of mount-driven Secrets: each mounting pod is an ownerReference of the Secret,
// applied with its own field manager (secretmount-pod-<pod UID>) so that SSA merges the
// references of every pod on every node, and released when that pod's volume is
// unpublished. The Kubernetes garbage collector removes the Secret once every owning pod
// is gone (a node that died never unpublishes); when the last reference is released by
// an unpublish, MountSync deletes the Secret itself, with a precondition on its
// resourceVersion so a pod that just added itself keeps it. A SecretSync's Secret is owned
// by the SecretSync and goes with it.
//
// After a failed fetch nothing is written: the Secret keeps its last good data, the
// SecretSync gets a False condition and the object a Warning event naming the object and
// the reason. Secret values never reach logs, events, metrics, errors or status; the
// package must not log or return one, and it must not read Secrets it does not write.
package sync
