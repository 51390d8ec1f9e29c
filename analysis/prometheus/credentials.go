package prometheus

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CredentialsFrom reads one Secret's data at a time through r. The
// controller passes an uncached reader (a cache would watch every Secret in
// the cluster; RBAC grants get per namespace), kubectl tug its user's client.
func CredentialsFrom(r client.Reader) Credentials {
	return func(ctx context.Context, namespace, name string) (map[string][]byte, error) {
		var s corev1.Secret
		if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
			return nil, err
		}
		return s.Data, nil
	}
}
