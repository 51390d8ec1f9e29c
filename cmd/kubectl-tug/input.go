package main

import (
	"fmt"
	"io"
	"os"
)

// readFile reads the file a -f flag names; "-" is stdin, as in kubectl.
func (o *options) readFile(name string) ([]byte, error) {
	if name != "-" {
		return os.ReadFile(name)
	}
	b, err := io.ReadAll(o.streams.In)
	if err != nil {
		return nil, fmt.Errorf("-f -: read stdin: %w", err)
	}
	return b, nil
}
