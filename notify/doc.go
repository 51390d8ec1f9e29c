// Package notify is what Tugboat tells people about a rollout or a preview:
// the event, its deterministic id (so that a receiver can drop a repeat),
// a headline, the structured explanation and the commands to run next. It is
// pure; notify/dispatch sends what it describes.
package notify
