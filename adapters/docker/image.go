package docker

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
)

// contentLabel marks an image built by BuildScratchImage with a hash of
// what went into it, so an unchanged image is not built again.
const contentLabel = "org.logbook.content"

// ScratchImage is a FROM scratch image holding one static binary at
// /bin/<Binary>, with each of Links a symlink to it in /bin (multi-call
// binaries pick the command from their name), and an empty /tmp.
type ScratchImage struct {
	Tag    string
	Binary string // file name under /bin
	Data   []byte // the binary's bytes
	Links  []string
	Cmd    []string // the default command, e.g. ["/bin/sh"]
	// Extra are more executables, by file name under /bin.
	Extra map[string][]byte
	// Files are other files, by absolute path (a bundle's
	// /bundle/config.yaml), mode 0644.
	Files map[string][]byte
}

// BuildScratchImage builds img through the Engine API's image build, with no
// registry involved, unless an image of that tag with the same content
// exists. It reports whether it built.
func BuildScratchImage(ctx context.Context, eng Engine, img ScratchImage) (bool, error) {
	cmd, _ := json.Marshal(img.Cmd)
	dockerfile := "FROM scratch\nCOPY rootfs/ /\n"
	if len(img.Cmd) > 0 {
		dockerfile += "CMD " + string(cmd) + "\n"
	}
	extra := slices.Sorted(maps.Keys(img.Extra))
	sum := sha256.New()
	sum.Write(img.Data)
	sum.Write([]byte(dockerfile + img.Binary + "\x00" + strings.Join(img.Links, ",")))
	for _, name := range extra {
		sum.Write([]byte("\x00" + name + "\x00"))
		sum.Write(img.Extra[name])
	}
	files := slices.Sorted(maps.Keys(img.Files))
	for _, path := range files {
		sum.Write([]byte("\x01" + path + "\x00"))
		sum.Write(img.Files[path])
	}
	content := hex.EncodeToString(sum.Sum(nil))
	if existing, err := eng.ImageInspect(ctx, img.Tag); err == nil {
		if existing.Config != nil && existing.Config.Labels[contentLabel] == content {
			return false, nil
		}
	} else if !cerrdefs.IsNotFound(err) {
		return false, err
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body []byte) error {
		h.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	steps := []error{
		add(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile))}, []byte(dockerfile)),
		add(&tar.Header{Name: "rootfs/bin/", Typeflag: tar.TypeDir, Mode: 0o755}, nil),
		add(&tar.Header{Name: "rootfs/tmp/", Typeflag: tar.TypeDir, Mode: 0o1777}, nil),
		add(&tar.Header{Name: "rootfs/bin/" + img.Binary, Mode: 0o755, Size: int64(len(img.Data))}, img.Data),
	}
	for _, name := range extra {
		steps = append(steps, add(&tar.Header{Name: "rootfs/bin/" + name, Mode: 0o755, Size: int64(len(img.Extra[name]))}, img.Extra[name]))
	}
	dirs := map[string]bool{"rootfs/bin/": true, "rootfs/tmp/": true}
	for _, path := range files {
		name := "rootfs/" + strings.TrimPrefix(path, "/")
		for dir := name[:strings.LastIndex(name, "/")+1]; dir != "rootfs/" && !dirs[dir]; dir = dir[:strings.LastIndex(strings.TrimSuffix(dir, "/"), "/")+1] {
			dirs[dir] = true
			steps = append(steps, add(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755}, nil))
		}
		steps = append(steps, add(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(img.Files[path]))}, img.Files[path]))
	}
	for _, link := range img.Links {
		if link == img.Binary {
			continue
		}
		steps = append(steps, add(&tar.Header{Name: "rootfs/bin/" + link, Typeflag: tar.TypeSymlink, Linkname: img.Binary, Mode: 0o777}, nil))
	}
	steps = append(steps, tw.Close())
	if err := errors.Join(steps...); err != nil {
		return false, err
	}
	resp, err := eng.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags: []string{img.Tag}, Remove: true, ForceRemove: true, Version: build.BuilderV1,
		Labels: map[string]string{contentLabel: content},
	})
	if err != nil {
		return false, fmt.Errorf("build image %s: %w", img.Tag, err)
	}
	defer resp.Body.Close()
	// The build reports progress and errors as a stream of JSON objects.
	failure, err := progressFailure(resp.Body)
	if err != nil {
		return false, fmt.Errorf("build image %s: reading progress: %w", img.Tag, err)
	}
	if failure != "" {
		return false, fmt.Errorf("build image %s: %s", img.Tag, failure)
	}
	return true, nil
}

// progressFailure reads a daemon's progress stream (a pull's, a build's:
// JSON objects) to its end and returns the failure it reports, if any; err
// says the stream itself could not be read.
func progressFailure(r io.Reader) (failure string, err error) {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return "", nil
		} else if err != nil {
			return "", err
		}
		if msg := cmp.Or(m.Error, m.ErrorDetail.Message); msg != "" {
			return msg, nil
		}
	}
}
