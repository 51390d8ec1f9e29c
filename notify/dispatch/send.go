package dispatch

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/slack-go/slack"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/egress"
	"github.com/tugboatdev/tugboat/notify"
)

// permanent is an error another attempt cannot get past: the address is
// refused or malformed, the receiver rejected the request as such. reason,
// when set, is the provider's condition reason.
type permanent struct {
	reason string
	err    error
}

func (e *permanent) Error() string { return e.err.Error() }
func (e *permanent) Unwrap() error { return e.err }

// receiver is where and how one provider is reached.
type receiver struct {
	address *url.URL
	token   string
	client  *http.Client
}

// resolve reads the provider's address and token, and checks the address
// against the guard.
func (d *Dispatcher) resolve(ctx context.Context, np *v1alpha1.NotificationProvider) (receiver, error) {
	address, token := np.Spec.Address, ""
	if ref := np.Spec.SecretRef; ref != nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		data, err := d.o.Secrets(ctx, np.Namespace, ref.Name)
		if err != nil {
			msg := fmt.Sprintf("secret %s is not readable", ref.Name)
			if apierrors.IsForbidden(err) {
				msg += ": bind the ClusterRole tugboat-secret-reader in this namespace to let the controller read it"
			} else if apierrors.IsNotFound(err) {
				msg += ": not found"
			}
			return receiver{}, &permanent{reason: "SecretNotReadable", err: errors.New(msg)}
		}
		a := strings.TrimSpace(string(data["address"]))
		if a != "" {
			address = a
		}
		// A token goes only with the address its Secret holds: a provider
		// that names an address of its own could otherwise send any
		// Secret's token key (a service account's) anywhere allowed.
		if t := strings.TrimSpace(string(data["token"])); t != "" {
			if a == "" {
				return receiver{}, &permanent{reason: "InvalidSpec", err: fmt.Errorf("secret %s has a token but no address: a token goes only to the address its Secret holds", ref.Name)}
			}
			token = t
		}
	}
	u, err := url.Parse(address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The address may be a credential: it is not quoted.
		return receiver{}, &permanent{reason: "InvalidAddress", err: errors.New("the address is not an http:// or https:// URL")}
	}
	if !d.o.Guard.Allows(u) {
		return receiver{}, &permanent{reason: "AddressRefused", err: fmt.Errorf("the address's host is not in the controller's --notification-allowed-hosts")}
	}
	timeout := time.Duration(max(np.Spec.TimeoutSeconds, 1)) * time.Second
	if np.Spec.TimeoutSeconds == 0 {
		timeout = 10 * time.Second
	}
	return receiver{address: u, token: token, client: &http.Client{Transport: d.transport(), Timeout: timeout}}, nil
}

func (d *Dispatcher) transport() http.RoundTripper {
	d.transportOnce.Do(func() {
		g := d.o.Guard
		if g.MaxResponse == 0 {
			g.MaxResponse = 64 << 10
		}
		d.rt = g.Transport(&tls.Config{MinVersion: tls.VersionTLS12})
	})
	return d.rt
}

// send makes one attempt to deliver e to np.
func (d *Dispatcher) send(ctx context.Context, np *v1alpha1.NotificationProvider, e notify.Event) error {
	r, err := d.resolve(ctx, np)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.client.Timeout)
	defer cancel()
	err = r.send(ctx, np, e)
	var refused *egress.Refused
	if errors.As(err, &refused) {
		return &permanent{reason: "AddressRefused", err: refused}
	}
	return err
}

func (r receiver) send(ctx context.Context, np *v1alpha1.NotificationProvider, e notify.Event) error {
	switch np.Spec.Type {
	case v1alpha1.NotifySlack:
		return r.slack(ctx, slackMessage(e, np.Spec.Channel))
	case v1alpha1.NotifyMSTeams:
		return r.postJSON(ctx, teamsMessage(e), nil)
	case v1alpha1.NotifyWebhook:
		return r.postJSON(ctx, e, map[string]string{"X-Tugboat-Event": e.Type(), "X-Tugboat-Id": e.ID()})
	case v1alpha1.NotifyCloudEvents:
		return r.cloudEvent(ctx, e)
	}
	return &permanent{reason: "InvalidSpec", err: fmt.Errorf("unknown type %q", np.Spec.Type)}
}

func (r receiver) slack(ctx context.Context, msg *slack.WebhookMessage) error {
	err := slack.PostWebhookCustomHTTPContext(ctx, r.address.String(), r.client, msg)
	var code slack.StatusCodeError
	if errors.As(err, &code) {
		return answered(code.Code, code.Status)
	}
	var limited *slack.RateLimitedError
	if errors.As(err, &limited) {
		return errors.New("rate limited by the receiver")
	}
	return unquoted(err)
}

func (r receiver) postJSON(ctx context.Context, body any, headers map[string]string) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return &permanent{err: fmt.Errorf("encode the notification: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.address.String(), bytes.NewReader(raw))
	if err != nil {
		return &permanent{reason: "InvalidAddress", err: errors.New("no request can be made to the address")}
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return unquoted(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return answered(resp.StatusCode, resp.Status)
	}
	return nil
}

// cloudEvent sends e as a CloudEvents 1.0 event in binary mode.
func (r receiver) cloudEvent(ctx context.Context, e notify.Event) error {
	opts := []cehttp.Option{cehttp.WithClient(*r.client), cehttp.WithTarget(r.address.String())}
	if r.token != "" {
		opts = append(opts, cehttp.WithHeader("Authorization", "Bearer "+r.token))
	}
	p, err := cloudevents.NewHTTP(opts...)
	if err != nil {
		return &permanent{reason: "InvalidAddress", err: errors.New("no CloudEvents client can be made for the address")}
	}
	c, err := cloudevents.NewClient(p)
	if err != nil {
		return &permanent{err: fmt.Errorf("make a CloudEvents client: %w", err)}
	}
	ev := cloudevents.NewEvent(cloudevents.VersionV1)
	ev.SetID(e.ID())
	ev.SetType(e.Type())
	ev.SetSource(e.Source())
	ev.SetSubject(e.Subject())
	ev.SetTime(e.Time)
	if err := ev.SetData(cloudevents.ApplicationJSON, e); err != nil {
		return &permanent{err: fmt.Errorf("encode the notification: %w", err)}
	}
	if err := ev.Validate(); err != nil {
		return &permanent{err: fmt.Errorf("the event is not valid CloudEvents: %w", err)}
	}
	res := c.Send(ctx, ev)
	if cloudevents.IsACK(res) {
		return nil
	}
	var hr *cehttp.Result
	if cloudevents.ResultAs(res, &hr) && hr.StatusCode != 0 {
		return answered(hr.StatusCode, http.StatusText(hr.StatusCode))
	}
	return unquoted(res)
}

// answered is the error of a receiver's non-2xx answer: worth another
// attempt when the receiver is overloaded or failing, not when it rejected
// the request itself.
func answered(code int, status string) error {
	err := fmt.Errorf("the receiver answered %d %s", code, strings.TrimPrefix(status, fmt.Sprint(code)+" "))
	if code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests {
		return &permanent{reason: "Rejected", err: err}
	}
	return err
}

// unquoted keeps the URL, which may be a credential (a Slack webhook), out of
// a transport error's text.
func unquoted(err error) error {
	if err == nil {
		return nil
	}
	var refused *egress.Refused
	var dns *net.DNSError
	var op *net.OpError
	var ue *url.Error
	switch {
	case errors.As(err, &refused):
		return refused
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ue) && ue.Timeout():
		return errors.New("no answer within the provider's timeoutSeconds")
	case errors.As(err, &dns):
		return errors.New("the receiver's host name does not resolve")
	case errors.As(err, &op):
		// Neither the address nor what it resolved to goes into status.
		return fmt.Errorf("could not %s the receiver", op.Op)
	case errors.As(err, &ue):
		return fmt.Errorf("%s to the receiver failed", ue.Op)
	}
	return err
}
