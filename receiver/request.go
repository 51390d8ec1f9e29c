package receiver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// The actions a request may ask for.
const (
	SetImage = "setImage"
	Promote  = "promote"
	Abort    = "abort"
	Rollback = "rollback"
	// Ping is GitHub's check that a webhook works; it does nothing.
	Ping = "ping"
)

// Headers of the generic request.
const (
	HeaderSignature = "X-Tugboat-Signature"
	HeaderTimestamp = "X-Tugboat-Timestamp"
)

// MaxSkew is how far a request's time may be from the controller's: older
// ones are stale, and signatures are remembered for this long to refuse
// replays.
const MaxSkew = 5 * time.Minute

// MinKeyLength is the shortest HMAC key a Receiver may use.
const MinKeyLength = 32

// Errors a caller branches on (the HTTP status, the metric).
var (
	ErrUnsigned     = errors.New("the request is not signed")
	ErrBadSignature = errors.New("the signature does not match")
	ErrStale        = errors.New("the request's time is too far from now")
	ErrMalformed    = errors.New("the request cannot be read")
	ErrUnsupported  = errors.New("the request is of a kind this receiver does not act on")
	ErrNotAllowed   = errors.New("the receiver does not allow it")
)

// Request is what a verified request asks for.
type Request struct {
	Action    string `json:"action"`
	Rollout   string `json:"rollout"`
	Container string `json:"container,omitempty"`
	Image     string `json:"image,omitempty"`
	// ToRevision is the revision a rollback goes to (0: the previous stable).
	ToRevision int64 `json:"toRevision,omitempty"`
	// Reason is recorded with a rollback.
	Reason string `json:"reason,omitempty"`
	// Time it was signed or made at.
	Time time.Time `json:"-"`
	// Digest identifies the request by its signature, for replays.
	Digest string `json:"-"`
	// Delivery is the sender's id of the request, if it gives one
	// (GitHub's X-GitHub-Delivery), for the event.
	Delivery string `json:"-"`
}

// Headers are a request's headers (http.Header is one).
type Headers interface{ Get(key string) string }

// Verify checks the request's signature with key and its time against now,
// and only then reads it.
func Verify(typ v1alpha1.ReceiverType, key []byte, h Headers, body []byte, now time.Time) (Request, error) {
	if len(key) < MinKeyLength {
		return Request{}, fmt.Errorf("%w: the receiver's key is shorter than %d bytes", ErrBadSignature, MinKeyLength)
	}
	switch typ {
	case v1alpha1.ReceiverGeneric:
		return verifyGeneric(key, h, body, now)
	case v1alpha1.ReceiverGitHub:
		return verifyGitHub(key, h, body, now)
	}
	return Request{}, fmt.Errorf("%w: type %q", ErrUnsupported, typ)
}

func verifyGeneric(key []byte, h Headers, body []byte, now time.Time) (Request, error) {
	sig, ts := h.Get(HeaderSignature), h.Get(HeaderTimestamp)
	if sig == "" || ts == "" {
		return Request{}, fmt.Errorf("%w: want headers %s and %s", ErrUnsigned, HeaderSignature, HeaderTimestamp)
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return Request{}, fmt.Errorf("%w: %s is not Unix seconds", ErrBadSignature, HeaderTimestamp)
	}
	dig, err := checkSignature(key, sig, []byte(ts+"."), body)
	if err != nil {
		return Request{}, err
	}
	at := time.Unix(secs, 0)
	if err := fresh(at, now); err != nil {
		return Request{}, err
	}
	var req Request
	if err := strictJSON(body, &req); err != nil {
		return Request{}, err
	}
	req.Time, req.Digest = at, dig
	return req, nil
}

func verifyGitHub(key []byte, h Headers, body []byte, now time.Time) (Request, error) {
	sig := h.Get("X-Hub-Signature-256")
	if sig == "" {
		return Request{}, fmt.Errorf("%w: want header X-Hub-Signature-256", ErrUnsigned)
	}
	dig, err := checkSignature(key, sig, nil, body)
	if err != nil {
		return Request{}, err
	}
	delivery := h.Get("X-GitHub-Delivery")
	if !deliveryID.MatchString(delivery) {
		delivery = ""
	}
	switch h.Get("X-GitHub-Event") {
	case "ping":
		return Request{Action: Ping, Delivery: delivery, Digest: dig}, nil
	case "deployment":
	default:
		return Request{}, fmt.Errorf("%w: GitHub event %q (deployment and ping are)", ErrUnsupported, h.Get("X-GitHub-Event"))
	}
	// GitHub signs the body, not the event header: a deployment_status
	// delivery, which holds the same deployment, must not pass for the
	// deployment's own.
	var ev struct {
		Action           string          `json:"action"`
		DeploymentStatus json.RawMessage `json:"deployment_status"`
		Deployment       struct {
			CreatedAt time.Time       `json:"created_at"`
			Payload   json.RawMessage `json:"payload"`
		} `json:"deployment"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if ev.Action != "created" || len(ev.DeploymentStatus) > 0 {
		return Request{}, fmt.Errorf("%w: only a deployment's created event is acted on", ErrUnsupported)
	}
	if err := fresh(ev.Deployment.CreatedAt, now); err != nil {
		return Request{}, err
	}
	var req Request
	if err := strictJSON(ev.Deployment.Payload, &req); err != nil {
		return Request{}, fmt.Errorf("the deployment's payload: %w", err)
	}
	req.Time, req.Digest, req.Delivery = ev.Deployment.CreatedAt, dig, delivery
	return req, nil
}

// checkSignature compares "sha256=<hex>" with the HMAC of prefix+body, in
// constant time, and returns the request's digest: a hash of the MAC
// itself, so that no re-encoding of the header (upper-case hex, say) makes
// a replay look new.
func checkSignature(key []byte, sig string, prefix, body []byte) (string, error) {
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	got, err := hex.DecodeString(hexSig)
	if !ok || err != nil {
		return "", fmt.Errorf("%w: want sha256=<hex>", ErrBadSignature)
	}
	m := hmac.New(sha256.New, key)
	m.Write(prefix)
	m.Write(body)
	mac := m.Sum(nil)
	if !hmac.Equal(got, mac) {
		return "", ErrBadSignature
	}
	d := sha256.Sum256(mac)
	return hex.EncodeToString(d[:]), nil
}

// Sign is the generic request's signature header value, as a sender makes
// it: sha256=HMAC-SHA256(key, "<timestamp>.<body>").
func Sign(key []byte, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%d.", timestamp)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func fresh(at, now time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("%w: it has no time", ErrStale)
	}
	if d := now.Sub(at); d > MaxSkew || d < -MaxSkew {
		return fmt.Errorf("%w: signed at %s, %s from now (at most %s)", ErrStale, at.UTC().Format(time.RFC3339), d.Round(time.Second), MaxSkew)
	}
	return nil
}

func strictJSON(raw []byte, req *Request) error {
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.DisallowUnknownFields()
	if err := d.Decode(req); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// deliveryID is what a GitHub delivery id looks like (a UUID); another
// value, unsigned as the header is, is left out of the event.
var deliveryID = regexp.MustCompile(`^[0-9a-fA-F-]{1,64}$`)

// image is a reference as registries spell them: no spaces or controls.
var image = regexp.MustCompile(`^[a-z0-9][a-z0-9._/:@-]*$`)

// Allow checks req against what the receiver allows.
func Allow(spec v1alpha1.ReceiverSpec, req Request) error {
	if !slices.Contains(spec.Rollouts, req.Rollout) {
		return fmt.Errorf("%w: rollout %q is not among its rollouts", ErrNotAllowed, req.Rollout)
	}
	a := spec.Actions
	switch req.Action {
	case SetImage:
		if a.SetImage == nil {
			return fmt.Errorf("%w: setImage", ErrNotAllowed)
		}
		return allowImage(*a.SetImage, req)
	case Promote, Abort, Rollback:
		if req.Image != "" || req.Container != "" {
			return fmt.Errorf("%w: image and container are for setImage", ErrMalformed)
		}
		if (req.Action == Promote && !a.Promote) || (req.Action == Abort && !a.Abort) || (req.Action == Rollback && !a.Rollback) {
			return fmt.Errorf("%w: %s", ErrNotAllowed, req.Action)
		}
		if req.Action == Rollback && (req.ToRevision < 0 || len(req.Reason) > 1024) {
			return fmt.Errorf("%w: toRevision must be 0 (the previous stable) or more, and reason at most 1024 bytes", ErrMalformed)
		}
		return nil
	}
	return fmt.Errorf("%w: action %q (setImage, promote, abort and rollback are)", ErrMalformed, req.Action)
}

func allowImage(s v1alpha1.SetImageAction, req Request) error {
	if req.Container == "" || len(req.Image) > 512 || !image.MatchString(req.Image) {
		return fmt.Errorf("%w: setImage needs a container and an image reference (lower-case repository, at most 512 bytes)", ErrMalformed)
	}
	if len(s.Containers) > 0 && !slices.Contains(s.Containers, req.Container) {
		return fmt.Errorf("%w: container %q", ErrNotAllowed, req.Container)
	}
	for _, p := range s.Images {
		// A digest decides which image runs, whatever the tag says: one is
		// allowed only where the pattern itself has one.
		if strings.Contains(req.Image, "@") && !strings.Contains(p, "@") {
			continue
		}
		if ok, err := path.Match(p, req.Image); err == nil && ok {
			return nil
		}
	}
	return fmt.Errorf("%w: image %q matches none of its patterns", ErrNotAllowed, req.Image)
}
