// Command lint checks docker/Dockerfile without a Docker engine: BuildKit's
// own Dockerfile frontend converts each named target to LLB (the build graph
// `docker build` would run) with every lint rule on, and any error or lint
// warning fails. Base images are not pulled: the runtime base answers with
// docker/runtime-base.json (the config of gcr.io/distroless/cc-debian12:nonroot),
// every other base with a bare config.
//
// With -image-config it prints, per target, the runtime config of the image
// `docker build` would make (user, environment, entrypoint, ports, working
// directory) as one JSON line: docker/local-images.sh gives the test
// ground's images exactly this config.
//
//	go run ./docker/lint docker/Dockerfile worker operator gateway
//	go run ./docker/lint -image-config docker/Dockerfile worker
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerui"
	digest "github.com/opencontainers/go-digest"
)

// stubResolver answers distroless base images with runtimeBase and every
// other base image with a minimal linux/amd64 config.
type stubResolver struct{ runtimeBase []byte }

func (r stubResolver) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	config := []byte(`{"os":"linux","architecture":"amd64","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":[]}}`)
	if strings.Contains(ref, "distroless/") {
		config = r.runtimeBase
	}
	return ref, digest.FromBytes(config), config, nil
}

func main() {
	args := os.Args[1:]
	imageConfig := len(args) > 0 && args[0] == "-image-config"
	if imageConfig {
		args = args[1:]
	}
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: lint [-image-config] DOCKERFILE TARGET...")
		os.Exit(2)
	}
	source, err := os.ReadFile(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	base, err := os.ReadFile(filepath.Join(filepath.Dir(args[0]), "runtime-base.json"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	failed := false
	for _, target := range args[1:] {
		var warnings []string
		opt := dockerfile2llb.ConvertOpt{
			MetaResolver: stubResolver{runtimeBase: base},
			Config:       dockerui.Config{Target: target, LinterConfig: &linter.Config{}},
			Warn: func(rule, _, _, message string, location []parser.Range) {
				line := 0
				if len(location) > 0 {
					line = location[0].Start.Line
				}
				warnings = append(warnings, fmt.Sprintf("line %d: %s: %s", line, rule, message))
			},
		}
		state, img, _, _, err := dockerfile2llb.Dockerfile2LLB(context.Background(), source, opt)
		if err == nil {
			_, err = state.Marshal(context.Background())
		}
		if imageConfig && err == nil {
			line, err := json.Marshal(img.Config)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			fmt.Printf("%s %s\n", target, line)
			continue
		}
		switch {
		case err != nil:
			fmt.Printf("%s: %v\n", target, err)
			failed = true
		case len(warnings) > 0:
			for _, w := range warnings {
				fmt.Printf("%s: %s\n", target, w)
			}
			failed = true
		default:
			fmt.Printf("%s: ok\n", target)
		}
	}
	if failed {
		os.Exit(1)
	}
}
