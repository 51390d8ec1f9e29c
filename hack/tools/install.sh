#!/usr/bin/env bash
# install.sh DEST TOOL...
#
# Builds the real servers Tugboat's tests and sandbox run on (and kubectl, for
# the examples that script it), each from the Go module in hack/tools/<group>,
# into DEST/<group>-<version>/. A tool whose binary is already there is
# skipped, so a second run does nothing.
set -euo pipefail

dest=$1; shift
here=$(cd "$(dirname "$0")" && pwd)

# shellcheck source=versions.env
. "$here/versions.env"
k8s_version=$KUBERNETES_VERSION
etcd_version=$ETCD_VERSION
prom_version=$PROMETHEUS_VERSION
kwok_version=$KWOK_VERSION
cgen_version=$CONTROLLER_TOOLS_VERSION
crdref_version=$CRD_REF_DOCS_VERSION

say() { printf '==> %s\n' "$*" >&2; }

# build GROUP VERSION OUTDIR PKG [LDFLAGS]
build() {
	local group=$1 version=$2 out=$3 pkg=$4 ldflags=${5:-}
	local bin
	bin=$out/$(basename "$pkg")
	if [ -x "$bin" ]; then
		return 0
	fi
	mkdir -p "$out"
	say "building $(basename "$pkg") $version (first build only; the Go build cache keeps the rest)"
	local start=$SECONDS
	(cd "$here/$group" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$bin.tmp" "$pkg")
	mv "$bin.tmp" "$bin"
	say "built $bin in $((SECONDS - start))s"
}

k8s_ldflags() {
	local minor=${k8s_version#v1.}
	minor=${minor%%.*}
	local flags=""
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		flags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
		flags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
	done
	echo "$flags"
}

for tool in "$@"; do
	case $tool in
	kube-apiserver | kube-controller-manager | kube-scheduler | kubectl)
		build kubernetes "$k8s_version" "$dest/kubernetes-$k8s_version" "k8s.io/kubernetes/cmd/$tool" "$(k8s_ldflags)"
		;;
	etcd)
		build etcd "$etcd_version" "$dest/etcd-$etcd_version" ./cmd/etcd
		;;
	prometheus | promtool)
		build prometheus "$prom_version" "$dest/prometheus-$prom_version" "github.com/prometheus/prometheus/cmd/$tool"
		;;
	kwok)
		build kwok "$kwok_version" "$dest/kwok-$kwok_version" sigs.k8s.io/kwok/cmd/kwok
		stages=$dest/kwok-$kwok_version/stages
		if [ ! -f "$stages/pod-delete.yaml" ]; then
			# kwok exits with "no stages found" without these; they ship in its module.
			src=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage
			mkdir -p "$stages"
			for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
				pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
				cp "$src/$f" "$stages/"
			done
			chmod -R u+w "$stages"
		fi
		;;
	controller-gen)
		build controller-gen "$cgen_version" "$dest/controller-gen-$cgen_version" sigs.k8s.io/controller-tools/cmd/controller-gen
		;;
	crd-ref-docs)
		build crd-ref-docs "$crdref_version" "$dest/crd-ref-docs-$crdref_version" github.com/elastic/crd-ref-docs
		;;
	*)
		echo "install.sh: unknown tool $tool" >&2
		exit 2
		;;
	esac
done
