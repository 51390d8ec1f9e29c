package analysis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

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
	dec := json.NewDecoder(bytes.NewReader(j.Spec.Raw))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
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
	if err := checkJob(spec); err != nil {
		return batchv1.JobSpec{}, err
	}
	return spec, nil
}

// Bounds of a job metric's Job.
const (
	maxJobDeadline    = 86400
	maxJobParallelism = 10
	maxJobBackoff     = 10
)

// checkJob refuses what would let a measurement never end, or a template
// reach past its namespace's pods: a Job that may be suspended, that the
// TTL controller could take before its outcome is read, that picks its own
// pods, node or host namespaces, mounts the host or runs privileged.
func checkJob(spec batchv1.JobSpec) error {
	var errs []error
	refuse := func(field, why string) { errs = append(errs, fmt.Errorf("provider.job.spec.%s: %s", field, why)) }
	if spec.Suspend != nil && *spec.Suspend {
		refuse("suspend", "a suspended Job never ends its measurement")
	}
	if spec.TTLSecondsAfterFinished != nil {
		refuse("ttlSecondsAfterFinished", "the Job must stay until its outcome is counted; it goes with its AnalysisRun")
	}
	if spec.ManualSelector != nil && *spec.ManualSelector {
		refuse("manualSelector", "a job metric's Job takes only its own pods")
	}
	if d := *spec.ActiveDeadlineSeconds; d < 1 || d > maxJobDeadline {
		refuse("activeDeadlineSeconds", fmt.Sprintf("must be from 1 to %d", maxJobDeadline))
	}
	for field, v := range map[string]*int32{"parallelism": spec.Parallelism, "completions": spec.Completions} {
		if v != nil && (*v < 0 || *v > maxJobParallelism) {
			refuse(field, fmt.Sprintf("must be from 0 to %d", maxJobParallelism))
		}
	}
	if spec.BackoffLimit != nil && (*spec.BackoffLimit < 0 || *spec.BackoffLimit > maxJobBackoff) {
		refuse("backoffLimit", fmt.Sprintf("must be from 0 to %d", maxJobBackoff))
	}
	pod := spec.Template.Spec
	switch {
	case pod.NodeName != "":
		refuse("template.spec.nodeName", "the scheduler places a job metric's pods")
	case pod.HostNetwork || pod.HostPID || pod.HostIPC:
		refuse("template.spec", "a job metric's pods share no host namespace (hostNetwork, hostPID, hostIPC)")
	}
	for i, v := range pod.Volumes {
		if v.HostPath != nil {
			refuse(fmt.Sprintf("template.spec.volumes[%d].hostPath", i), "a job metric's pods mount nothing of the host")
		}
	}
	for i, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		if sc := c.SecurityContext; sc != nil && (sc.Privileged != nil && *sc.Privileged || sc.AllowPrivilegeEscalation != nil && *sc.AllowPrivilegeEscalation) {
			refuse(fmt.Sprintf("template.spec.containers[%d].securityContext", i), "a job metric's containers run unprivileged")
		}
	}
	return errors.Join(errs...)
}
