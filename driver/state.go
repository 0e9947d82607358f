package driver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The state folder holds one JSON record per published volume, so a restarted driver
// knows which mounts are its own and keeps rotating them. A record holds what
// PublishedVolume holds and nothing more: no secret value, no token.

const recordSuffix = ".json"

type stateStore struct{ dir string }

// recordPath names a volume's record by a hash of its target path: target paths are
// long and full of slashes, and the name must be a single file name.
func (s stateStore) recordPath(target string) string {
	sum := sha256.Sum256([]byte(target))
	return filepath.Join(s.dir, hex.EncodeToString(sum[:16])+recordSuffix)
}

func (s stateStore) save(v PublishedVolume) error {
	if s.dir == "" {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode record of volume %s: %w", v.VolumeID, err)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("create state folder %s: %w", s.dir, err)
	}
	tmp, err := os.CreateTemp(s.dir, ".record-*")
	if err != nil {
		return fmt.Errorf("save record of volume %s: %w", v.VolumeID, err)
	}
	// No fsync: a record has to survive a restart of the driver, not of the node. A
	// written file is in the page cache the moment write(2) returns, and a killed process
	// loses none of it, while rename(2) makes the new record appear whole or not at all.
	// A node that goes down takes every tmpfs mount with it, so the records it might lose
	// or tear would name mounts that no longer exist: restore drops those, and skips a
	// torn one. An fsync here cost about 3 ms per publish on an ext4 disk, most of the
	// driver's own time.
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("save record of volume %s: %w", v.VolumeID, err)
	}
	if err := os.Rename(tmp.Name(), s.recordPath(v.TargetPath)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("save record of volume %s: %w", v.VolumeID, err)
	}
	return nil
}

func (s stateStore) delete(target string) error {
	if s.dir == "" {
		return nil
	}
	if err := os.Remove(s.recordPath(target)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove record of %s: %w", target, err)
	}
	return nil
}

// load reads every record; unreadable ones are reported and skipped, never fatal: a bad
// record must not keep the driver from serving the volumes it can.
func (s stateStore) load() ([]PublishedVolume, []error) {
	if s.dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{fmt.Errorf("list state folder %s: %w", s.dir, err)}
	}
	var out []PublishedVolume
	var errs []error
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), recordSuffix) {
			continue
		}
		p := filepath.Join(s.dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("read record %s: %w", p, err))
			continue
		}
		var v PublishedVolume
		if err := json.Unmarshal(b, &v); err != nil || v.TargetPath == "" || s.recordPath(v.TargetPath) != p {
			errs = append(errs, fmt.Errorf("record %s is not a volume record", p))
			continue
		}
		out = append(out, v)
	}
	return out, errs
}
