// Package receiver decides what a signed request to the trigger endpoint
// may do: it checks the signature and its freshness, reads the request
// (Tugboat's generic JSON or GitHub's deployment webhook), and checks it
// against what the Receiver allows. It is pure; receiver/server serves the
// endpoint and carries requests out.
package receiver
