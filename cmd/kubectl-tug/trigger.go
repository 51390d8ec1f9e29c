package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tugboatdev/tugboat/receiver"
)

// triggerRequest is what kubectl tug trigger sends.
type triggerRequest struct {
	endpoint string
	key      []byte
	body     receiver.Request
}

// triggerAnswer is the endpoint's answer.
type triggerAnswer struct {
	Accepted bool   `json:"accepted"`
	Action   string `json:"action,omitempty"`
	Rollout  string `json:"rollout,omitempty"`
	Message  string `json:"message"`
}

func newTriggerCmd(o *options) *cobra.Command {
	var endpoint, keyFile, container, image, reason string
	var toRevision int64
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "trigger ACTION ROLLOUT --endpoint URL (--key-file FILE | $TUGBOAT_RECEIVER_KEY)",
		Short: "Ask a Receiver to act on a rollout, without cluster credentials",
		Long: `Send a signed request to the controller's trigger endpoint, for CI outside
the cluster: the endpoint is a Receiver's URL (https://HOST/hook/NAMESPACE/NAME),
the key the token in the Receiver's Secret. ACTION is setImage (with
--container and --image), promote, abort or rollback (--to-revision,
--reason). The request is signed with HMAC-SHA256 over "<timestamp>.<body>";
the endpoint refuses it if the signature or the time is off, if it was sent
before, or if the Receiver does not allow it. No kubeconfig is read.

Exit codes: 0 accepted; 4 refused or not delivered (the endpoint's message
says why).`,
		Example: `  export TUGBOAT_RECEIVER_KEY=...   # the Receiver's Secret's token
  kubectl tug trigger setImage web --container app --image ghcr.io/acme/web:1.4.2 \
    --endpoint https://tugboat.example.com/hook/prod/ci
  kubectl tug trigger promote web --endpoint https://tugboat.example.com/hook/prod/ci`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: completeTrigger,
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := triggerKey(keyFile)
			if err != nil {
				return err
			}
			req := triggerRequest{endpoint: endpoint, key: key, body: receiver.Request{
				Action: args[0], Rollout: args[1], Container: container, Image: image, ToRevision: toRevision, Reason: reason,
			}}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			// A redirect would take the signed request to another host.
			hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			if strings.HasPrefix(endpoint, "http://") {
				o.log.Warn("the endpoint is plain HTTP: the request and the answer can be read on the way")
			}
			a, err := trigger(ctx, hc, req, time.Now())
			if err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			fmt.Fprintf(o.streams.Out, "%s %s: %s\n", a.Action, a.Rollout, a.Message)
			return nil
		},
	}
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "the Receiver's URL: https://HOST/hook/NAMESPACE/NAME")
	cmd.Flags().StringVar(&keyFile, "key-file", "", "file holding the Receiver's key (else $TUGBOAT_RECEIVER_KEY)")
	cmd.Flags().StringVar(&container, "container", "", "setImage: the container")
	cmd.Flags().StringVar(&image, "image", "", "setImage: the image")
	cmd.Flags().Int64Var(&toRevision, "to-revision", 0, "rollback: the revision (0: the previous stable)")
	cmd.Flags().StringVar(&reason, "reason", "", "rollback: why, recorded with it")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the answer")
	_ = cmd.MarkFlagRequired("endpoint")
	return cmd
}

func triggerKey(file string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, &exitError{code: exitTrouble, err: err}
		}
		return bytes.TrimSpace(b), nil
	}
	if k := strings.TrimSpace(os.Getenv("TUGBOAT_RECEIVER_KEY")); k != "" {
		return []byte(k), nil
	}
	return nil, &exitError{code: exitTrouble, err: errors.New("no key: pass --key-file or set TUGBOAT_RECEIVER_KEY")}
}

// trigger signs and sends one request, and returns the accepted answer.
func trigger(ctx context.Context, hc *http.Client, r triggerRequest, now time.Time) (triggerAnswer, error) {
	u, err := url.Parse(r.endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || !strings.HasPrefix(u.Path, "/hook/") {
		return triggerAnswer{}, fmt.Errorf("--endpoint %q: want https://HOST/hook/NAMESPACE/NAME", r.endpoint)
	}
	body, err := json.Marshal(r.body)
	if err != nil {
		return triggerAnswer{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return triggerAnswer{}, err
	}
	ts := now.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(receiver.HeaderTimestamp, fmt.Sprint(ts))
	req.Header.Set(receiver.HeaderSignature, receiver.Sign(r.key, ts, body))
	resp, err := hc.Do(req)
	if err != nil {
		return triggerAnswer{}, fmt.Errorf("send to %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	var a triggerAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&a); err != nil {
		return triggerAnswer{}, fmt.Errorf("%s answered %s, not a trigger answer", u.Host, resp.Status)
	}
	if !a.Accepted {
		return a, fmt.Errorf("refused (%s): %s", resp.Status, a.Message)
	}
	return a, nil
}
