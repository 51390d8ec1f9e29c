// Package scheme builds the runtime.Scheme every Tugboat binary uses: the
// built-in kinds, Tugboat's, Istio's networking kinds and CRDs.
package scheme

import (
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	istionetworkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// New returns a scheme with the kinds Tugboat reads and writes.
func New() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme,
		v1alpha1.AddToScheme,
		istionetworking.AddToScheme,
		istionetworkingv1alpha3.AddToScheme, // EnvoyFilter
		apiextensionsv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}
