//go:build tools

// Package tools pins the crd-ref-docs command that `make tools` builds.
package tools

import _ "github.com/elastic/crd-ref-docs"
