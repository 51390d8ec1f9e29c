package analysis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// WebRequest is a web metric's request with the run's arguments in place.
type WebRequest struct {
	Method string
	// URL holds no value from a Secret: status shows it.
	URL string
	// Headers may hold values from Secrets (a token); they are never shown.
	Headers []v1alpha1.WebHeader
	Body    []byte
	// JSON says the body is JSON.
	JSON     bool
	Timeout  time.Duration
	JSONPath string
	Insecure bool
}

// Bounds of a rendered web request.
const (
	maxWebURL  = 8192
	maxWebBody = 256 << 10
	// DefaultWebTimeout is a web metric's timeout unless it says.
	DefaultWebTimeout = 10 * time.Second
)

// RenderWeb puts the arguments into a web metric's request. In the URL, an
// argument that opens it (url: "{{args.approvals}}/api") goes in as it is,
// and must make an http or https URL; any other is escaped, every byte but
// the unreserved ones, so that it stays within the path segment or query
// value it stands in. In a JSON body an argument goes into a string, and
// re-encoding escapes it. Arguments from Secrets may stand only in header
// values and bodies, which go to the allowed host and are never shown.
// Errors quote the template, never what it rendered to.
func (a Args) RenderWeb(w v1alpha1.WebMetric) (WebRequest, error) {
	req := WebRequest{Method: string(w.Method), JSONPath: w.JSONPath, Insecure: w.Insecure, Timeout: DefaultWebTimeout}
	if req.Method == "" {
		req.Method = "GET"
	}
	if w.TimeoutSeconds > 0 {
		req.Timeout = time.Duration(w.TimeoutSeconds) * time.Second
	}
	if refersTo(w.URL, a.Secret) || refersTo(w.JSONPath, a.Secret) {
		return WebRequest{}, errors.New("url: arguments from Secrets cannot be used in the url or jsonPath, which status shows")
	}
	u, err := renderURL(w.URL, a.Values)
	if err != nil {
		return WebRequest{}, fmt.Errorf("url %q: %w", w.URL, err)
	}
	req.URL = u
	if req.JSONPath, err = substitutePlain(w.JSONPath, a.Values); err != nil {
		return WebRequest{}, fmt.Errorf("jsonPath: %w", err)
	}
	for _, h := range w.Headers {
		v, err := substitutePlain(h.Value, a.Values)
		if err != nil {
			return WebRequest{}, fmt.Errorf("header %s: %w", h.Key, err)
		}
		if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
			return WebRequest{}, fmt.Errorf("header %s: the value holds control characters (not shown)", h.Key)
		}
		req.Headers = append(req.Headers, v1alpha1.WebHeader{Key: h.Key, Value: v})
	}
	switch {
	case len(w.JSONBody) > 0:
		var body any
		dec := json.NewDecoder(bytes.NewReader(w.JSONBody))
		dec.UseNumber() // integers past 2^53 stay as written
		if err := dec.Decode(&body); err != nil {
			return WebRequest{}, fmt.Errorf("jsonBody: %w", err)
		}
		if body, err = substituteJSON(body, a.Values); err != nil {
			return WebRequest{}, fmt.Errorf("jsonBody: %w", err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(body); err != nil {
			return WebRequest{}, fmt.Errorf("jsonBody: %w", err)
		}
		req.Body, req.JSON = bytes.TrimSpace(buf.Bytes()), true
	case w.Body != "":
		if len(ArgNames(w.Body)) > 0 && slices.ContainsFunc(w.Headers, func(h v1alpha1.WebHeader) bool {
			return strings.EqualFold(h.Key, "Content-Type") && strings.Contains(strings.ToLower(h.Value), "json")
		}) {
			return WebRequest{}, errors.New("body: arguments in a JSON body go in jsonBody, which keeps them within its strings; body takes them as they are")
		}
		b, err := substitutePlain(w.Body, a.Values)
		if err != nil {
			return WebRequest{}, fmt.Errorf("body: %w", err)
		}
		req.Body = []byte(b)
	}
	if len(req.Body) > maxWebBody {
		return WebRequest{}, fmt.Errorf("the body renders to more than %d bytes", maxWebBody)
	}
	return req, nil
}

// renderURL puts the arguments into a URL (see RenderWeb).
func renderURL(text string, values map[string]string) (string, error) {
	var errs []error
	value := func(name string) string {
		v, ok := values[name]
		if !ok {
			errs = append(errs, fmt.Errorf("argument %q has no value", name))
		}
		return v
	}
	var b strings.Builder
	rest := text
	if loc := placeholder.FindStringSubmatchIndex(rest); loc != nil && loc[0] == 0 {
		b.WriteString(value(rest[loc[2]:loc[3]]))
		rest = rest[loc[1]:]
	}
	b.WriteString(placeholder.ReplaceAllStringFunc(rest, func(p string) string {
		name := placeholder.FindStringSubmatch(p)[1]
		v := value(name)
		if v != "" && strings.Trim(v, ".") == "" {
			// "." and ".." would move the path (dots are not escaped).
			errs = append(errs, fmt.Errorf("argument %q is only dots, which would change the path", name))
		}
		return escapeAll(v)
	}))
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	out := b.String()
	u, err := url.Parse(out)
	switch {
	case err != nil, u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.User != nil,
		strings.ContainsFunc(out, unicode.IsSpace), len(out) > maxWebURL:
		return "", errors.New("does not render to an http:// or https:// URL with a host and no user (the value is not shown)")
	}
	return out, nil
}

// escapeAll percent-encodes every byte of v but the unreserved ones
// (RFC 3986), which is right in a path segment and in a query value alike.
func escapeAll(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// substituteJSON replaces the arguments in every string of a decoded JSON
// value; keys may hold none.
func substituteJSON(v any, values map[string]string) (any, error) {
	switch v := v.(type) {
	case string:
		return substitutePlain(v, values)
	case []any:
		for i := range v {
			var err error
			if v[i], err = substituteJSON(v[i], values); err != nil {
				return nil, err
			}
		}
		return v, nil
	case map[string]any:
		for k, x := range v {
			if len(ArgNames(k)) > 0 {
				return nil, fmt.Errorf("key %q: arguments stand in values, not keys", k)
			}
			var err error
			if v[k], err = substituteJSON(x, values); err != nil {
				return nil, err
			}
		}
		return v, nil
	}
	return v, nil
}

// Mask replaces, in every string of a decoded JSON answer, the values of
// arguments from Secrets with REDACTED: a server that echoes its request
// would otherwise put a token into status.
func (a Args) Mask(answer any) any {
	switch v := answer.(type) {
	case string:
		return a.MaskText(v)
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = a.Mask(v[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[a.MaskText(k)] = a.Mask(x)
		}
		return out
	}
	return answer
}

// MaskText replaces the values of arguments from Secrets in text, the
// longest first, so that one inside another leaves nothing of it.
func (a Args) MaskText(text string) string {
	var values []string
	for k := range a.Secret {
		if v := a.Values[k]; v != "" {
			values = append(values, v)
		}
	}
	slices.SortFunc(values, func(x, y string) int { return len(y) - len(x) })
	for _, v := range values {
		text = strings.ReplaceAll(text, v, "REDACTED")
	}
	return text
}

// WebRefersTo reports whether a web metric's request names any argument of
// names: in its url, jsonPath, headers or body.
func WebRefersTo(w v1alpha1.WebMetric, names map[string]bool) bool {
	text := w.URL + " " + w.JSONPath + " " + w.Body + " " + string(w.JSONBody)
	for _, h := range w.Headers {
		text += " " + h.Value
	}
	return refersTo(text, names)
}
