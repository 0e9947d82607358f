package providerclass

import (
	"errors"
	"os"
	"strconv"
	"strings"
)

// parseMode reads a filePermission: octal digits, with or without a leading "0" or
// "0o" ("0600", "600", "0o600"). Only permission bits are accepted; setuid, setgid
// and sticky make no sense for a secret file and are refused.
func parseMode(s string) (os.FileMode, error) {
	digits := strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	if digits == "" {
		return 0, errors.New("must be an octal file mode such as \"0600\"")
	}
	v, err := strconv.ParseUint(digits, 8, 32)
	if err != nil {
		return 0, errors.New("must be an octal file mode such as \"0600\"")
	}
	if v > 0o777 {
		return 0, errors.New("must be an octal file mode of at most \"0777\" (permission bits only)")
	}
	return os.FileMode(v), nil
}
