// Command lint checks docker/Dockerfile without a Docker engine: BuildKit's
// own Dockerfile frontend converts each named target to LLB (the build graph
// `docker build` would run) with every lint rule on, and any error or lint
// warning fails. Base images are not pulled: their config is stubbed.
//
//	go run ./docker/lint docker/Dockerfile worker operator gateway
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerui"
	digest "github.com/opencontainers/go-digest"
)

// stubResolver answers every base image with a minimal linux/amd64 config.
type stubResolver struct{}

func (stubResolver) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	config := []byte(`{"os":"linux","architecture":"amd64","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":[]}}`)
	return ref, digest.FromBytes(config), config, nil
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: lint DOCKERFILE TARGET...")
		os.Exit(2)
	}
	source, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	failed := false
	for _, target := range os.Args[2:] {
		var warnings []string
		opt := dockerfile2llb.ConvertOpt{
			MetaResolver: stubResolver{},
			Config:       dockerui.Config{Target: target, LinterConfig: &linter.Config{}},
			Warn: func(rule, _, _, message string, location []parser.Range) {
				line := 0
				if len(location) > 0 {
					line = location[0].Start.Line
				}
				warnings = append(warnings, fmt.Sprintf("line %d: %s: %s", line, rule, message))
			},
		}
		state, _, _, _, err := dockerfile2llb.Dockerfile2LLB(context.Background(), source, opt)
		if err == nil {
			_, err = state.Marshal(context.Background())
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
