package istio

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestNotAsRead(t *testing.T) {
	vs := schema.GroupKind{Group: "networking.istio.io", Kind: "VirtualService"}
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		// What the API server answers when a JSON patch does not apply.
		{"a failed test of the patch", apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "", schema.GroupResource{}, "", "testing value /metadata/resourceVersion failed", 0, false), true},
		{"wrapped", fmt.Errorf("set split: %w", apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "", schema.GroupResource{}, "", "", 0, false)), true},
		{"a failed validation of the patched object", apierrors.NewInvalid(vs, "podinfo", field.ErrorList{field.Invalid(field.NewPath("spec", "http").Index(0).Child("timeout"), "0s", "must be a valid duration greater than 1ms")}), false},
		{"a conflict", apierrors.NewConflict(schema.GroupResource{Resource: "virtualservices"}, "podinfo", errors.New("changed")), false},
		{"no error", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := notAsRead(tt.err); got != tt.want {
				t.Errorf("notAsRead(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
