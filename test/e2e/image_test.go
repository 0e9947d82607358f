package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// readTar returns every regular file and the mode of every entry of a tar.
func readTar(t *testing.T, data []byte) (map[string][]byte, map[string]int64) {
	t.Helper()
	files, modes := map[string][]byte{}, map[string]int64{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, modes
		}
		if err != nil {
			t.Fatal(err)
		}
		modes[h.Name] = h.Mode
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = b
		}
	}
}

// TestWriteArchive checks the docker-archive layout containerd's importer follows: the
// manifest names the tag, the config and the layer; the config's diff_id is the layer's
// digest; the layer holds the binary, executable, at the entrypoint.
func TestWriteArchive(t *testing.T) {
	tests := []struct {
		name       string
		entrypoint string
		wantDirs   []string
	}{
		{"top level", "/reader", nil},
		{"nested", "/usr/bin/reader", []string{"usr/", "usr/bin/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			binary := []byte("\x7fELF not really")
			path := filepath.Join(t.TempDir(), "image.tar")
			img := Image{Ref: "e2e.local/reader:1", Entrypoint: tt.entrypoint}
			if err := writeArchive(img, binary, path); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			files, _ := readTar(t, data)
			var manifest []struct {
				Config   string
				RepoTags []string
				Layers   []string
			}
			if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
				t.Fatalf("manifest.json: %v", err)
			}
			if len(manifest) != 1 || len(manifest[0].RepoTags) != 1 || manifest[0].RepoTags[0] != img.Ref || len(manifest[0].Layers) != 1 {
				t.Fatalf("manifest = %+v, want one image tagged %s with one layer", manifest, img.Ref)
			}
			var config struct {
				OS, Architecture string
				Config           struct{ Entrypoint []string }
				RootFS           struct {
					Type    string
					DiffIDs []string `json:"diff_ids"`
				}
			}
			configData, ok := files[manifest[0].Config]
			if !ok {
				t.Fatalf("config %s not in the archive", manifest[0].Config)
			}
			if err := json.Unmarshal(configData, &config); err != nil {
				t.Fatal(err)
			}
			layer, ok := files[manifest[0].Layers[0]]
			if !ok {
				t.Fatalf("layer %s not in the archive", manifest[0].Layers[0])
			}
			sum := sha256.Sum256(layer)
			if want := "sha256:" + hex.EncodeToString(sum[:]); len(config.RootFS.DiffIDs) != 1 || config.RootFS.DiffIDs[0] != want {
				t.Errorf("diff_ids = %v, want [%s]", config.RootFS.DiffIDs, want)
			}
			if config.OS != "linux" || config.RootFS.Type != "layers" || len(config.Config.Entrypoint) != 1 || config.Config.Entrypoint[0] != tt.entrypoint {
				t.Errorf("config = %+v", config)
			}
			layerFiles, layerModes := readTar(t, layer)
			if got := layerFiles[tt.entrypoint[1:]]; !bytes.Equal(got, binary) {
				t.Errorf("layer file %s = %q, want the binary", tt.entrypoint[1:], got)
			}
			if m := layerModes[tt.entrypoint[1:]]; m != 0o755 {
				t.Errorf("binary mode = %o, want 755", m)
			}
			for _, d := range tt.wantDirs {
				if _, ok := layerModes[d]; !ok {
					t.Errorf("layer lacks folder %s", d)
				}
			}
		})
	}
}

func TestWriteArchiveRefusesRelativeEntrypoint(t *testing.T) {
	for _, ep := range []string{"reader", "/usr/../reader", ""} {
		err := writeArchive(Image{Ref: "e2e.local/x:1", Entrypoint: ep}, []byte("x"), filepath.Join(t.TempDir(), "x.tar"))
		if err == nil {
			t.Errorf("entrypoint %q: no error", ep)
		}
	}
}
