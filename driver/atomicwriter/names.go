package atomicwriter

import (
	"fmt"

	"github.com/secretmount/secretmount/providerclass"
)

// validateFileName checks one relative path before the writer joins it under the target
// folder. providerclass validates names when it plans and external providers' names are
// validated on receipt; the writer checks again because it is what touches the disk.
func validateFileName(name string) error {
	if err := providerclass.ValidateFileName(name, true); err != nil {
		return fmt.Errorf("file name %q: %w", name, err)
	}
	return nil
}

// validateFileSet checks every name and that no two files collide: the same name twice,
// or one file's name used as another's folder.
func validateFileSet(names []string) error {
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if err := validateFileName(n); err != nil {
			return err
		}
		if seen[n] {
			return fmt.Errorf("file name %q is used twice", n)
		}
		seen[n] = true
	}
	for _, n := range names {
		for i := 0; i < len(n); i++ {
			if n[i] == '/' && seen[n[:i]] {
				return fmt.Errorf("file name %q is also a folder of file %q", n[:i], n)
			}
		}
	}
	return nil
}
