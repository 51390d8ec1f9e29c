package rollout

import "fmt"

// SpecError is a problem that only a person can fix: a spec that cannot be
// carried out, an object it names that is missing or taken, a target that is
// gone. Decide holds a rollout that has one where it is, reported with
// Outcome, while aborts (a person's, a failed background analysis, the
// progress deadline) still act.
type SpecError struct {
	// Outcome is InvalidSpec or TargetNotFound.
	Outcome Outcome
	Message string
}

func (e *SpecError) Error() string { return e.Message }

// Invalid is a SpecError of outcome InvalidSpec.
func Invalid(format string, args ...any) *SpecError {
	return &SpecError{Outcome: InvalidSpec, Message: fmt.Sprintf(format, args...)}
}

// TargetMissing is a SpecError of outcome TargetNotFound.
func TargetMissing(format string, args ...any) *SpecError {
	return &SpecError{Outcome: TargetNotFound, Message: fmt.Sprintf(format, args...)}
}
