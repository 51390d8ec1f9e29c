// Command tugboat-release makes what a release ships without a Docker
// engine, into dist/: `image` the controller's image (a tarball per
// architecture, an OCI layout of all) and install.yaml pinned to it,
// `plugin` kubectl-tug's archives, their checksums and krew's manifest.
// `make release VERSION=vX.Y.Z` runs both.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/spf13/cobra"

	"github.com/tugboatdev/tugboat/release"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "tugboat-release:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	var version, revision, repository, out string
	var created int64
	var arches []string
	root := &cobra.Command{Use: "tugboat-release", Short: "Make Tugboat's release artifacts", SilenceUsage: true, SilenceErrors: true}
	image := &cobra.Command{
		Use:   "image",
		Short: "Build the controller's image (a tarball per architecture and an OCI layout of all) and install.yaml pinned to it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !strings.HasPrefix(version, "v") {
				return fmt.Errorf("--version %q: want a version such as v0.1.0", version)
			}
			ref, err := name.NewTag(repository + ":" + version)
			if err != nil {
				return fmt.Errorf("--repository: %w", err)
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			images := map[string]v1.Image{}
			for _, arch := range arches {
				bin := filepath.Join(out, "tugboat-linux-"+arch)
				build := exec.CommandContext(cmd.Context(), "go", "build", "-trimpath", "-o", bin,
					"-ldflags", ldflags(version, revision), "./cmd/tugboat")
				build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
				build.Stdout, build.Stderr = os.Stdout, os.Stderr
				if err := build.Run(); err != nil {
					return fmt.Errorf("build the controller for linux/%s: %w", arch, err)
				}
				img, err := release.Image(release.ImageOptions{Binary: bin, Arch: arch, Version: version, Revision: revision, Created: time.Unix(created, 0).UTC()})
				if err != nil {
					return err
				}
				path := filepath.Join(out, "tugboat-image-linux-"+arch+".tar")
				if err := tarball.WriteToFile(path, ref, img); err != nil {
					return err
				}
				digest, err := img.Digest()
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s  %s@%s (linux/%s)\n", path, ref.Context(), digest, arch)
				if err := os.Remove(bin); err != nil {
					return err
				}
				images[arch] = img
			}
			// Every architecture under one digest, as an OCI layout that
			// `crane push dist/tugboat-image REF --index` pushes; install.yaml
			// pins that digest.
			idx := release.Index(images)
			layoutDir := filepath.Join(out, "tugboat-image")
			if err := os.RemoveAll(layoutDir); err != nil {
				return err
			}
			if _, err := layout.Write(layoutDir, idx); err != nil {
				return err
			}
			digest, err := idx.Digest()
			if err != nil {
				return err
			}
			install, err := release.Install(".", ref.Context().Name(), digest)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(out, "install.yaml"), install, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s  %s@%s (every architecture)\n%s  pinned to it\n", layoutDir, ref.Context(), digest, filepath.Join(out, "install.yaml"))
			return nil
		},
	}
	image.Flags().StringVar(&version, "version", "", "the release's version, vX.Y.Z (stamped into the binary and the image's labels)")
	image.Flags().StringVar(&revision, "revision", "", "the git revision built")
	image.Flags().Int64Var(&created, "created", 0, "the image's creation time, Unix seconds (the commit's: the same inputs give the same digest)")
	image.Flags().StringVar(&repository, "repository", "ghcr.io/tugboatdev/tugboat", "the image's repository")
	image.Flags().StringVar(&out, "out", "dist", "where to write")
	image.Flags().StringSliceVar(&arches, "arch", []string{"amd64", "arm64"}, "architectures")
	_ = image.MarkFlagRequired("version")
	root.AddCommand(image, newPluginCmd())
	return root
}

func newPluginCmd() *cobra.Command {
	var version, revision, out, downloads string
	var created int64
	var platforms []string
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Build kubectl-tug for each platform: archives, checksums.txt and krew's plugins/tug.yaml",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !strings.HasPrefix(version, "v") {
				return fmt.Errorf("--version %q: want a version such as v0.1.0", version)
			}
			if err := os.MkdirAll(filepath.Join(out, "plugins"), 0o755); err != nil {
				return err
			}
			var archives []release.PluginArchive
			for _, p := range platforms {
				goos, goarch, ok := strings.Cut(p, "/")
				if !ok {
					return fmt.Errorf("--platform %q: want OS/ARCH", p)
				}
				bin := filepath.Join(out, "kubectl-tug-"+goos+"-"+goarch)
				build := exec.CommandContext(cmd.Context(), "go", "build", "-trimpath", "-o", bin,
					"-ldflags", ldflags(version, revision), "./cmd/kubectl-tug")
				build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
				build.Stdout, build.Stderr = os.Stdout, os.Stderr
				if err := build.Run(); err != nil {
					return fmt.Errorf("build kubectl-tug for %s: %w", p, err)
				}
				a, err := release.Archive(bin, "LICENSE", goos, goarch, version, out, time.Unix(created, 0).UTC())
				if err != nil {
					return err
				}
				if err := os.Remove(bin); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s  sha256 %s\n", a.Path, a.SHA256)
				archives = append(archives, a)
			}
			if err := os.WriteFile(filepath.Join(out, "checksums.txt"), release.Checksums(archives), 0o644); err != nil {
				return err
			}
			manifest, err := release.KrewManifest(version, strings.ReplaceAll(downloads, "VERSION", version), archives)
			if err != nil {
				return err
			}
			path := filepath.Join(out, "plugins", "tug.yaml")
			if err := os.WriteFile(path, manifest, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n%s  for krew\n", filepath.Join(out, "checksums.txt"), path)
			return nil
		},
	}
	cmd.Flags().StringVar(&version, "version", "", "the release's version, vX.Y.Z")
	cmd.Flags().StringVar(&revision, "revision", "", "the git revision built (stamped into kubectl-tug)")
	cmd.Flags().Int64Var(&created, "created", 0, "the archives' file times, Unix seconds (the commit's: the same inputs give the same checksums)")
	cmd.Flags().StringVar(&out, "out", "dist", "where to write")
	cmd.Flags().StringVar(&downloads, "downloads", "https://github.com/tugboatdev/tugboat/releases/download/VERSION", "where the release's archives are downloaded from (VERSION is replaced)")
	cmd.Flags().StringSliceVar(&platforms, "platform", []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"}, "platforms")
	_ = cmd.MarkFlagRequired("version")
	return cmd
}

// ldflags strip the binary and stamp the release's version and revision
// into it (package version).
func ldflags(version, revision string) string {
	return "-s -w -X github.com/tugboatdev/tugboat/version.version=" + version +
		" -X github.com/tugboatdev/tugboat/version.revision=" + revision
}
