// Package atomicwriter writes the files of a secrets mount the way kubelet's AtomicWriter
// does: a new timestamped folder per write, fsynced, made visible by renaming the ..data
// link, with top-level links into it. Readers see the old set of files or the new one,
// never a mix, and a failed write leaves the old set as it was.
//
// It validates every name so nothing lands outside the folder. It never logs: the files
// hold secret values, and errors name files, never contents.
package atomicwriter
