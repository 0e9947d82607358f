package driver

import (
	"github.com/secretmount/secretmount/driver/atomicwriter"
	"github.com/secretmount/secretmount/providerclass"
)

// WriteFiles replaces the files in dir with files in the layout a published volume has
// (timestamped folder, ..data link swapped atomically, top-level links), without a mount
// group. `secretmount render` uses it so a rendered folder matches a mounted one.
func WriteFiles(dir string, files []providerclass.File) error {
	return atomicwriter.Write(dir, files, atomicwriter.NoGroup)
}
