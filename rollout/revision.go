package rollout

import (
	"encoding/json"
	"fmt"
	"hash/fnv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"
)

// Revision is the identity of a pod template: a short hash of its JSON. A new
// revision of the target starts a rollout; `kubectl tug wait` compares it
// with the stable revision.
func Revision(t corev1.PodTemplateSpec) string {
	b, err := json.Marshal(t)
	if err != nil {
		// A PodTemplateSpec always marshals; a failure is a programming error.
		panic(fmt.Sprintf("marshal pod template: %v", err))
	}
	h := fnv.New32a()
	h.Write(b)
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}
