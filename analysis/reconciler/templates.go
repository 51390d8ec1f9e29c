package reconciler

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// ErrTemplateNotFound wraps the error of a template that is not there: a
// problem with the spec that names it, not with the controller.
var ErrTemplateNotFound = errors.New("not found")

// Template reads the AnalysisTemplate ref names in namespace ns, or the
// ClusterAnalysisTemplate when ref says cluster scope.
func Template(ctx context.Context, c client.Reader, ns string, ref v1alpha1.AnalysisTemplateRef) (v1alpha1.AnalysisTemplateSpec, error) {
	if ptr.Deref(ref.ClusterScope, false) {
		var t v1alpha1.ClusterAnalysisTemplate
		if err := c.Get(ctx, client.ObjectKey{Name: ref.TemplateName}, &t); err != nil {
			if apierrors.IsNotFound(err) {
				return t.Spec, fmt.Errorf("clusteranalysistemplate %s %w", ref.TemplateName, ErrTemplateNotFound)
			}
			return t.Spec, fmt.Errorf("get clusteranalysistemplate %s: %w", ref.TemplateName, err)
		}
		return t.Spec, nil
	}
	var t v1alpha1.AnalysisTemplate
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.TemplateName}, &t); err != nil {
		if apierrors.IsNotFound(err) {
			return t.Spec, fmt.Errorf("analysistemplate %s/%s %w", ns, ref.TemplateName, ErrTemplateNotFound)
		}
		return t.Spec, fmt.Errorf("get analysistemplate %s/%s: %w", ns, ref.TemplateName, err)
	}
	return t.Spec, nil
}
