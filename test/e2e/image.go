package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"
)

// Image is a one-binary container image the node imports from a docker-archive tar, so
// no registry is involved: pods name it with imagePullPolicy Never.
type Image struct {
	// Ref is the image's repository and tag, e.g. e2e.local/reader:1.
	Ref string
	// Package is the Go package of the binary, relative to the repository root.
	Package string
	// Entrypoint is the binary's path inside the image.
	Entrypoint string
}

// epoch gives every archive entry the same time, so the same binary makes the same
// layer digest.
var epoch = time.Unix(0, 0).UTC()

// buildStatic builds pkg as a static linux binary (no libc in the image to link to).
func buildStatic(repoRoot, pkg, out string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./"+pkg)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("failed to build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// writeArchive writes a docker-archive tar (docker save's layout: manifest.json naming the
// config and the layer, a config whose rootfs.diff_ids is the layer's digest, and the
// uncompressed layer.tar) holding binary at img.Entrypoint.
func writeArchive(img Image, binary []byte, path string) error {
	layer, err := layerTar(img.Entrypoint, binary)
	if err != nil {
		return err
	}
	layerSum := sha256.Sum256(layer)
	diffID := "sha256:" + hex.EncodeToString(layerSum[:])
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      epoch.Format(time.RFC3339),
		"config":       map[string]any{"Entrypoint": []string{img.Entrypoint}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	})
	if err != nil {
		return fmt.Errorf("failed to encode the image config of %s: %w", img.Ref, err)
	}
	configSum := sha256.Sum256(config)
	configName := hex.EncodeToString(configSum[:]) + ".json"
	layerName := hex.EncodeToString(layerSum[:]) + "/layer.tar"
	manifest, err := json.Marshal([]map[string]any{{
		"Config":   configName,
		"RepoTags": []string{img.Ref},
		"Layers":   []string{layerName},
	}})
	if err != nil {
		return fmt.Errorf("failed to encode the manifest of %s: %w", img.Ref, err)
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries := []struct {
		name string
		data []byte
	}{{configName, config}, {layerName, layer}, {"manifest.json", manifest}}
	if err := tw.WriteHeader(&tar.Header{Name: filepath.Dir(layerName) + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}); err != nil {
		return err
	}
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e.data)), ModTime: epoch}); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("failed to write the archive of %s: %w", img.Ref, err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// layerTar is a filesystem layer with the binary and the folders above it.
func layerTar(entrypoint string, binary []byte) ([]byte, error) {
	if !filepath.IsAbs(entrypoint) || filepath.Clean(entrypoint) != entrypoint {
		return nil, fmt.Errorf("image entrypoint %q must be a clean absolute path", entrypoint)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	rel := entrypoint[1:]
	var dirs []string
	for d := filepath.Dir(rel); d != "."; d = filepath.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: rel, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(binary)), ModTime: epoch}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(binary); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("failed to write the layer: %w", err)
	}
	return buf.Bytes(), nil
}
