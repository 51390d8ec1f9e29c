package istio

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
)

// annotationAddedRoutes records, on the VirtualService, the routes Tugboat
// added (header and mirror routes), so that it removes exactly those and
// never a user's route (GitOps tools leave annotations they do not manage
// alone). Several Rollouts may share a VirtualService, so the record is a
// JSON object from Rollout name to the names of the routes it added, and each
// Rollout removes only its own. It is one annotation rather than one per
// Rollout because the name part of an annotation key holds at most 63
// characters, and a Rollout's name up to 253.
const annotationAddedRoutes = "tugboat.dev/added-routes"

// annotationHeaderRoutes is the record of earlier versions: the added routes,
// comma-separated, with no owner. So that a VirtualService written by them is
// still cleaned up, its routes count as every Rollout's; the first write by
// this version removes those not in force for its Rollout, records the rest
// under that Rollout, and drops this annotation. A route another Rollout
// wants back is added again on its next pass.
const annotationHeaderRoutes = "tugboat.dev/header-routes"

// ownedRoutes returns the routes owner added to vs (by the record) and so may
// remove. A record that cannot be read is an error; the routes of the old
// record are returned even then.
func ownedRoutes(vs *istiov1.VirtualService, owner string) ([]string, error) {
	owned := strings.FieldsFunc(vs.Annotations[annotationHeaderRoutes], func(r rune) bool { return r == ',' })
	rec, err := readRecord(vs)
	if err != nil {
		return owned, err
	}
	// An empty name would match every unnamed route of the user's.
	return slices.DeleteFunc(append(owned, rec[owner]...), func(n string) bool { return n == "" }), nil
}

func readRecord(vs *istiov1.VirtualService) (map[string][]string, error) {
	v, ok := vs.Annotations[annotationAddedRoutes]
	if !ok {
		return map[string][]string{}, nil
	}
	var rec map[string][]string
	if err := json.Unmarshal([]byte(v), &rec); err != nil {
		return nil, fmt.Errorf("virtualservice %s/%s annotation %s: %w: %w", vs.Namespace, vs.Name, annotationAddedRoutes, ErrRecordUnreadable, err)
	}
	if rec == nil { // "null"
		rec = map[string][]string{}
	}
	return rec, nil
}

// recordAdded records names as the routes owner has added to vs, keeping the
// other Rollouts' entries, and drops the old record. It changes only the
// annotations, and fails only on a record it cannot read (leaving it as it
// is, since rewriting it would lose the other Rollouts' entries).
func recordAdded(vs *istiov1.VirtualService, owner string, names []string) error {
	rec, err := readRecord(vs)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		delete(rec, owner)
	} else {
		rec[owner] = slices.Clone(names)
	}
	delete(vs.Annotations, annotationHeaderRoutes)
	if len(rec) == 0 {
		delete(vs.Annotations, annotationAddedRoutes)
		return nil
	}
	v, err := json.Marshal(rec) // keys sorted: the same record is the same string
	if err != nil {
		return fmt.Errorf("virtualservice %s/%s annotation %s: %w", vs.Namespace, vs.Name, annotationAddedRoutes, err)
	}
	if vs.Annotations == nil {
		vs.Annotations = map[string]string{}
	}
	vs.Annotations[annotationAddedRoutes] = string(v)
	return nil
}
