package reconciler

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// pagedReader answers lists a page at a time, decoding each page into the
// list it is given as the API client does (a field the page lacks keeps
// what the list held).
type pagedReader struct {
	client.Reader
	items []*istiov1.VirtualService
	calls int
}

func (r *pagedReader) List(_ context.Context, list client.ObjectList, opts ...client.ListOption) error {
	r.calls++
	if r.calls > 100 {
		return fmt.Errorf("listed %d times", r.calls)
	}
	var o client.ListOptions
	o.ApplyOptions(opts)
	from, _ := strconv.Atoi(o.Continue)
	to := min(len(r.items), from+int(o.Limit))
	page := istiov1.VirtualServiceList{}
	for i := from; i < to; i++ {
		page.Items = append(page.Items, r.items[i])
	}
	if to < len(r.items) {
		page.Continue = strconv.Itoa(to)
	}
	b, err := json.Marshal(page)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, list)
}

func TestLivePlacementsReadEveryPageOnce(t *testing.T) {
	var items []*istiov1.VirtualService
	for i := range 1203 {
		vs := &istiov1.VirtualService{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: fmt.Sprintf("vs%d", i)}}
		switch i {
		case 7, 1202:
			vs.Annotations = map[string]string{"tugboat.dev/preview-mirrors": `{"preview:pr/shop":{"route":"primary","mirror":{"host":"shop.pr"}}}`}
		case 600:
			vs.Annotations = map[string]string{"tugboat.dev/preview-mirrors": `{oops`, "tugboat.dev/mirroring-routes": "primary-mirror-1"}
		}
		items = append(items, vs)
	}
	reader := &pagedReader{items: items}
	r := &Reconciler{APIReader: reader}
	got, err := r.livePlacements(t.Context(), "preview:pr/shop")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, pl := range got {
		names = append(names, pl.vs)
	}
	if fmt.Sprint(names) != "[vs7 vs600 vs1202]" || reader.calls != 3 {
		t.Errorf("placements %v in %d lists, want vs7, vs600 (its record unreadable) and vs1202 in 3", names, reader.calls)
	}
}
