package rollout

import "k8s.io/utils/ptr"

// promoting reports whether status calls the canary promoting: every step
// done, and no abort.
func promoting(s Spec, p Progress) bool {
	return p.InRollout() && p.Abort == nil && (p.Promoting || int(ptr.Deref(p.Step, 0)) >= len(s.Steps))
}

func promotionCommitted(s Spec, p Progress, o Observed) bool {
	return promoting(s, p) && o.PrimaryRevision == p.CanaryRevision
}

// keepPrimaryOnStatus puts primary back on the stable revision when it runs
// one that the status plan records calls neither stable nor promoting (a
// promotion whose status write was lost, a person editing primary).
func keepPrimaryOnStatus(plan Plan, o Observed) Plan {
	n := plan.Next
	switch {
	case o.PrimaryRevision == "" || n.StableRevision == "" || plan.PromotePrimary || plan.RollBackPrimary:
		return plan
	case o.PrimaryRevision == n.StableRevision, n.Promoting && o.PrimaryRevision == n.CanaryRevision:
		return plan
	}
	msg := "; primary runs revision " + o.PrimaryRevision + ", which is neither stable nor being promoted"
	if !o.StableRecorded {
		plan.Message += msg + ", and no record of stable revision " + n.StableRevision + " is left to put it back on"
		return plan
	}
	plan.RestorePrimary = true
	plan.Message += msg + ": putting stable revision " + n.StableRevision + " back"
	return plan
}
