// Package rollout decides the next move of a canary rollout from observed
// state. It is pure: Decide takes the spec, the progress kept in status and a
// snapshot of the world, and returns a Plan that the reconciler carries out.
// No clients, no clock, no logging.
package rollout
