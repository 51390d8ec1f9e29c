package analysis

import (
	"encoding/json"
	"errors"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	kjson "sigs.k8s.io/json"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// DefaultJobDeadline is how long a metric's Job may run when its spec sets
// no activeDeadlineSeconds, so that no measurement waits for ever.
const DefaultJobDeadline int64 = 3600

// RenderJob is a job metric's Job spec with the arguments in every string,
// read strictly: a field batch/v1 does not have is an error that names it.
// Arguments from Secrets cannot stand in it, since anyone who may read the
// Job sees its spec.
func (a Args) RenderJob(j v1alpha1.JobMetric) (batchv1.JobSpec, error) {
	if len(j.Spec.Raw) == 0 {
		return batchv1.JobSpec{}, errors.New("provider.job.spec is empty")
	}
	if refersTo(string(j.Spec.Raw), a.Secret) {
		return batchv1.JobSpec{}, errors.New("provider.job.spec: arguments from Secrets cannot be used in a Job's spec, which anyone who may read the Job sees; use an env valueFrom.secretKeyRef")
	}
	var tree any
	if err := json.Unmarshal(j.Spec.Raw, &tree); err != nil {
		return batchv1.JobSpec{}, fmt.Errorf("provider.job.spec: %w", err)
	}
	tree, err := substituteJSON(tree, a.Values)
	if err != nil {
		return batchv1.JobSpec{}, fmt.Errorf("provider.job.spec: %w", err)
	}
	raw, err := json.Marshal(tree)
	if err != nil {
		return batchv1.JobSpec{}, fmt.Errorf("provider.job.spec: %w", err)
	}
	var spec batchv1.JobSpec
	strict, err := kjson.UnmarshalStrict(raw, &spec)
	if err != nil {
		return batchv1.JobSpec{}, fmt.Errorf("provider.job.spec: %w", err)
	}
	if len(strict) > 0 {
		return batchv1.JobSpec{}, fmt.Errorf("provider.job.spec: %w", errors.Join(strict...))
	}
	if spec.ActiveDeadlineSeconds == nil {
		d := DefaultJobDeadline
		spec.ActiveDeadlineSeconds = &d
	}
	return spec, nil
}
