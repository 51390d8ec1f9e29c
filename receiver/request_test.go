package receiver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

var (
	key = []byte("0123456789abcdef0123456789abcdef")
	now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
)

func generic(body string, at time.Time, sign func(ts int64, body []byte) string) http.Header {
	h := http.Header{}
	h.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(HeaderSignature, sign(at.Unix(), []byte(body)))
	return h
}

func github(event, body string, k []byte) http.Header {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(body))
	h := http.Header{}
	h.Set("X-GitHub-Event", event)
	h.Set("X-GitHub-Delivery", "d-1")
	h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	return h
}

func TestVerify(t *testing.T) {
	signed := func(ts int64, b []byte) string { return Sign(key, ts, b) }
	promote := `{"action":"promote","rollout":"web"}`
	deployment := `{"action":"created","deployment":{"created_at":"2026-12-02T11:59:00Z","payload":{"action":"setImage","rollout":"web","container":"app","image":"ghcr.io/acme/web:1.2"}}}`
	tests := []struct {
		name    string
		typ     v1alpha1.ReceiverType
		h       http.Header
		body    string
		key     []byte
		want    Request
		wantErr error
	}{{
		name: "a signed generic request",
		typ:  v1alpha1.ReceiverGeneric, h: generic(promote, now.Add(-time.Minute), signed), body: promote,
		want: Request{Action: Promote, Rollout: "web", Time: now.Add(-time.Minute)},
	}, {
		name: "unsigned", typ: v1alpha1.ReceiverGeneric, h: http.Header{}, body: promote, wantErr: ErrUnsigned,
	}, {
		name: "signed with another key",
		typ:  v1alpha1.ReceiverGeneric, body: promote,
		h:       generic(promote, now, func(ts int64, b []byte) string { return Sign([]byte("another key, as long as the first"), ts, b) }),
		wantErr: ErrBadSignature,
	}, {
		name: "the body changed after signing",
		typ:  v1alpha1.ReceiverGeneric, h: generic(promote, now, signed), body: `{"action":"abort","rollout":"web"}`,
		wantErr: ErrBadSignature,
	}, {
		name: "the timestamp changed after signing",
		typ:  v1alpha1.ReceiverGeneric, body: promote,
		h: func() http.Header {
			h := generic(promote, now.Add(-10*time.Minute), signed)
			h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
			return h
		}(),
		wantErr: ErrBadSignature,
	}, {
		name: "stale", typ: v1alpha1.ReceiverGeneric, h: generic(promote, now.Add(-6*time.Minute), signed), body: promote, wantErr: ErrStale,
	}, {
		name: "from the future", typ: v1alpha1.ReceiverGeneric, h: generic(promote, now.Add(6*time.Minute), signed), body: promote, wantErr: ErrStale,
	}, {
		name: "a field Tugboat does not know",
		typ:  v1alpha1.ReceiverGeneric, h: generic(`{"action":"promote","rollout":"web","namespace":"kube-system"}`, now, signed),
		body: `{"action":"promote","rollout":"web","namespace":"kube-system"}`, wantErr: ErrMalformed,
	}, {
		name: "a key too short to trust", typ: v1alpha1.ReceiverGeneric, body: promote, key: []byte("short"), wantErr: ErrBadSignature,
		h: generic(promote, now, func(ts int64, b []byte) string { return Sign([]byte("short"), ts, b) }),
	}, {
		name: "a GitHub deployment",
		typ:  v1alpha1.ReceiverGitHub, h: github("deployment", deployment, key), body: deployment,
		want: Request{Action: SetImage, Rollout: "web", Container: "app", Image: "ghcr.io/acme/web:1.2", Time: now.Add(-time.Minute), Delivery: "d-1"},
	}, {
		name: "a GitHub deployment_status passed off as a deployment",
		typ:  v1alpha1.ReceiverGitHub, body: `{"action":"created","deployment_status":{"state":"success"},"deployment":{"created_at":"2026-12-02T11:59:00Z","payload":{"action":"promote","rollout":"web"}}}`,
		h:       github("deployment", `{"action":"created","deployment_status":{"state":"success"},"deployment":{"created_at":"2026-12-02T11:59:00Z","payload":{"action":"promote","rollout":"web"}}}`, key),
		wantErr: ErrUnsupported,
	}, {
		name: "a GitHub ping does nothing",
		typ:  v1alpha1.ReceiverGitHub, h: github("ping", `{"zen":"x"}`, key), body: `{"zen":"x"}`,
		want: Request{Action: Ping, Delivery: "d-1"},
	}, {
		name: "a GitHub push is not acted on",
		typ:  v1alpha1.ReceiverGitHub, h: github("push", `{}`, key), body: `{}`, wantErr: ErrUnsupported,
	}, {
		name: "a GitHub deployment signed with another key",
		typ:  v1alpha1.ReceiverGitHub, h: github("deployment", deployment, []byte("another key, as long as the first")), body: deployment, wantErr: ErrBadSignature,
	}, {
		name: "a GitHub deployment of long ago",
		typ:  v1alpha1.ReceiverGitHub, body: `{"action":"created","deployment":{"created_at":"2026-12-01T11:59:00Z","payload":{"action":"promote","rollout":"web"}}}`,
		h:       github("deployment", `{"action":"created","deployment":{"created_at":"2026-12-01T11:59:00Z","payload":{"action":"promote","rollout":"web"}}}`, key),
		wantErr: ErrStale,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := tt.key
			if k == nil {
				k = key
			}
			got, err := Verify(tt.typ, k, tt.h, []byte(tt.body), now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got.Digest == "" {
				t.Error("no digest")
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(Request{}, "Digest")); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDigestIsTheSignatures(t *testing.T) {
	body := []byte(`{"action":"promote","rollout":"web"}`)
	a, _ := Verify(v1alpha1.ReceiverGeneric, key, generic(string(body), now, func(ts int64, b []byte) string { return Sign(key, ts, b) }), body, now)
	b, _ := Verify(v1alpha1.ReceiverGeneric, key, generic(string(body), now.Add(-time.Second), func(ts int64, b []byte) string { return Sign(key, ts, b) }), body, now)
	c, _ := Verify(v1alpha1.ReceiverGeneric, key, generic(string(body), now, func(ts int64, b []byte) string { return Sign(key, ts, b) }), body, now.Add(time.Second))
	if a.Digest == b.Digest || a.Digest != c.Digest {
		t.Errorf("digests %s %s %s: want the same request to have one digest, another signing time another", a.Digest, b.Digest, c.Digest)
	}
}

func TestAReencodedSignatureIsTheSameRequest(t *testing.T) {
	body := []byte(`{"action":"promote","rollout":"web"}`)
	h := generic(string(body), now, func(ts int64, b []byte) string { return Sign(key, ts, b) })
	a, err := Verify(v1alpha1.ReceiverGeneric, key, h, body, now)
	if err != nil {
		t.Fatal(err)
	}
	h.Set(HeaderSignature, "sha256="+strings.ToUpper(strings.TrimPrefix(h.Get(HeaderSignature), "sha256=")))
	b, err := Verify(v1alpha1.ReceiverGeneric, key, h, body, now)
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest != b.Digest {
		t.Errorf("upper-case hex made another digest (%s, %s): a replay would pass", a.Digest, b.Digest)
	}
}

func TestAllow(t *testing.T) {
	spec := v1alpha1.ReceiverSpec{
		Rollouts: []string{"web"},
		Actions: v1alpha1.ReceiverActions{
			SetImage: &v1alpha1.SetImageAction{Images: []string{"ghcr.io/acme/web:*"}, Containers: []string{"app"}},
			Promote:  true,
		},
	}
	tests := []struct {
		name string
		req  Request
		want error
	}{
		{"set an allowed image", Request{Action: SetImage, Rollout: "web", Container: "app", Image: "ghcr.io/acme/web:1.2"}, nil},
		{"promote", Request{Action: Promote, Rollout: "web"}, nil},
		{"another rollout", Request{Action: Promote, Rollout: "db"}, ErrNotAllowed},
		{"an action not allowed", Request{Action: Abort, Rollout: "web"}, ErrNotAllowed},
		{"rollback not allowed", Request{Action: Rollback, Rollout: "web"}, ErrNotAllowed},
		{"another repository", Request{Action: SetImage, Rollout: "web", Container: "app", Image: "ghcr.io/evil/web:1.2"}, ErrNotAllowed},
		{"a path past the pattern", Request{Action: SetImage, Rollout: "web", Container: "app", Image: "ghcr.io/acme/web:1.2/../x"}, ErrNotAllowed},
		{"another container", Request{Action: SetImage, Rollout: "web", Container: "sidecar", Image: "ghcr.io/acme/web:1.2"}, ErrNotAllowed},
		{"no container", Request{Action: SetImage, Rollout: "web", Image: "ghcr.io/acme/web:1.2"}, ErrMalformed},
		{"an image with a space", Request{Action: SetImage, Rollout: "web", Container: "app", Image: "ghcr.io/acme/web:1 2"}, ErrMalformed},
		{"an image with a no-break space", Request{Action: SetImage, Rollout: "web", Container: "app", Image: "ghcr.io/acme/web:1\u00a0"}, ErrMalformed},
		{"a digest past the tag pattern", Request{Action: SetImage, Rollout: "web", Container: "app", Image: "ghcr.io/acme/web:1.2@sha256:" + strings.Repeat("a", 64)}, ErrNotAllowed},
		{"an image on promote", Request{Action: Promote, Rollout: "web", Image: "x"}, ErrMalformed},
		{"an unknown action", Request{Action: "delete", Rollout: "web"}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Allow(spec, tt.req); !errors.Is(err, tt.want) {
				t.Errorf("Allow = %v, want %v", err, tt.want)
			}
		})
	}
	withRollback := spec
	withRollback.Actions.Rollback = true
	if err := Allow(withRollback, Request{Action: Rollback, Rollout: "web", ToRevision: -1}); !errors.Is(err, ErrMalformed) {
		t.Errorf("a negative revision: %v", err)
	}
}
