// Command reader is the e2e test container: it lists a mounted secrets folder and prints
// one JSON line per distinct view of it (file names, modes, sizes and SHA-256 digests, never
// contents), then looks again every second so a rotation shows as a new line. It stops on
// SIGTERM.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// File is what the reader reports for one entry of the folder.
type File struct {
	Name   string `json:"name"`
	Mode   string `json:"mode"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// View is one look at the folder.
type View struct {
	Dir   string `json:"dir"`
	Files []File `json:"files"`
	Error string `json:"error,omitempty"`
}

func main() {
	dir := "/mnt/secrets-store"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := ""
	for {
		line, err := json.Marshal(look(dir))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if string(line) != last {
			fmt.Println(string(line))
			last = string(line)
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// look reads every visible entry; names starting with ".." are the atomic writer's own
// bookkeeping (the data folder and its link), not files the pod is meant to read.
func look(dir string) View {
	v := View{Dir: dir, Files: []File{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		info, err := os.Stat(p)
		if err != nil {
			v.Error = err.Error()
			continue
		}
		f := File{Name: e.Name(), Mode: fmt.Sprintf("%04o", info.Mode().Perm()), Size: info.Size()}
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				v.Error = err.Error()
				continue
			}
			sum := sha256.Sum256(b)
			f.SHA256 = hex.EncodeToString(sum[:])
		} else {
			f.Mode = info.Mode().String()
		}
		v.Files = append(v.Files, f)
	}
	sort.Slice(v.Files, func(i, j int) bool { return v.Files[i].Name < v.Files[j].Name })
	return v
}
