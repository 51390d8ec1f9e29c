// Package shadow plans preview mirroring: whether a production namespace's
// mirror policy lets a preview receive copies of a production route's
// traffic (policy.go), the mirror that puts those copies on the route
// (mirror.go), and the preview's phase and verdict from its analysis
// (decide.go). It is pure: the Preview reconciler observes the world, asks
// this package, and carries out the answer.
package shadow
