package envoylua

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestOnRequest(t *testing.T) {
	in := map[string]string{":authority": "web", ":method": "GET", "cookie": "a=1", "accept": "*/*"}
	tests := []struct {
		name string
		src  string
		in   map[string]string
		want Result
		err  string // the script error Envoy would log; "" for none
	}{{
		name: "no envoy_on_request lets the request through untouched",
		src:  `function envoy_on_response(handle) end`,
		want: Result{Headers: in},
	}, {
		name: "get, remove, replace and add change what the upstream receives",
		src: `function envoy_on_request(handle)
  local h = handle:headers()
  h:replace("x-seen", h:get(":authority") .. "/" .. h:get(":method"))
  h:remove("cookie")
  h:add("accept", "text/html")
  if h:get("missing") == nil then h:add("x-missing", "nil") end
end`,
		want: Result{Headers: map[string]string{":authority": "web", ":method": "GET", "accept": "*/*,text/html", "x-seen": "web/GET", "x-missing": "nil"}},
	}, {
		name: "header names are case-insensitive, as Envoy lower-cases them",
		src: `function envoy_on_request(handle)
  local h = handle:headers()
  h:remove("Cookie")
  h:replace("X-New", h:get("ACCEPT"))
end`,
		in:   map[string]string{"Accept": "*/*", "COOKIE": "a=1"},
		want: Result{Headers: map[string]string{"accept": "*/*", "x-new": "*/*"}},
	}, {
		name: "respond answers the request itself",
		src: `function envoy_on_request(handle)
  handle:logInfo("refusing")
  handle:respond({[":status"] = "403", ["x-why"] = "nope"}, "forbidden")
end`,
		want: Result{Headers: in, Status: 403, Body: "forbidden"},
	}, {
		name: "a numeric :status and no body",
		src:  `function envoy_on_request(handle) handle:respond({[":status"] = 429}) end`,
		want: Result{Headers: in, Status: 429},
	}, {
		name: "nothing after respond changes the outcome, as Envoy never resumes the script",
		src: `function envoy_on_request(handle)
  handle:respond({[":status"] = "503"}, "first")
  handle:respond({[":status"] = "200"}, "second")
  error("never seen by Envoy")
end`,
		want: Result{Headers: in, Status: 503, Body: "first"},
	}, {
		name: "an uncaught error lets the request continue with the changes made before it",
		src: `function envoy_on_request(handle)
  handle:headers():remove("cookie")
  handle:headers():nosuch()
  handle:headers():remove("accept")
end`,
		want: Result{Headers: map[string]string{":authority": "web", ":method": "GET", "accept": "*/*"}},
		err:  "attempt to call a non-function object",
	}, {
		name: "a raised error is the same",
		src:  `function envoy_on_request(handle) error("boom") end`,
		want: Result{Headers: in},
		err:  "boom",
	}, {
		name: "respond without a valid :status is a script error",
		src:  `function envoy_on_request(handle) handle:respond({[":status"] = "100"}, "x") end`,
		want: Result{Headers: in},
		err:  ":status must be between 200-599",
	}, {
		name: "a caught error is the script's business",
		src: `function envoy_on_request(handle)
  local ok = pcall(function() handle:headers():nosuch() end)
  if not ok then handle:respond({[":status"] = "503"}, "failed closed") end
end`,
		want: Result{Headers: in, Status: 503, Body: "failed closed"},
	}, {
		name: "methods called with a dot are a script error",
		src:  `function envoy_on_request(handle) handle.headers():remove("cookie") end`,
		want: Result{Headers: in},
		err:  "bad argument #1",
	}, {
		name: "os and io are not there",
		src:  `function envoy_on_request(handle) if os == nil and io == nil then handle:respond({[":status"] = "200"}) end end`,
		want: Result{Headers: in, Status: 200},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := tt.in
			if headers == nil {
				headers = in
			}
			got, err := Run(tt.src, headers)
			if err != nil {
				t.Fatal(err)
			}
			if (got.Err == nil) != (tt.err == "") || got.Err != nil && !strings.Contains(got.Err.Error(), tt.err) {
				t.Errorf("script error %v, want one containing %q", got.Err, tt.err)
			}
			got.Err = nil
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("OnRequest mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if in["cookie"] != "a=1" || len(in) != 4 {
		t.Errorf("the caller's headers changed: %v", in)
	}
}

func TestLoadRefuses(t *testing.T) {
	for _, tt := range []struct{ name, src string }{
		{"a syntax error", `function envoy_on_request(handle) handle:headers(`},
		{"an error at the top level", `error("no")`},
		{"an envoy_on_request that is not a function", `envoy_on_request = 42`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := Load(tt.src); err == nil {
				s.Close()
				t.Error("loaded")
			}
		})
	}
}

// Globals live as long as the Script, as within one Envoy worker, and a
// handle kept past its request is dead.
func TestScriptKeepsStateAcrossRequests(t *testing.T) {
	s, err := Load(`
local n = 0
function envoy_on_request(handle)
  n = n + 1
  handle:headers():replace("x-n", tostring(n))
  if kept ~= nil then kept:headers() end
  kept = handle
end`)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first := s.OnRequest(nil)
	second := s.OnRequest(nil)
	if first.Headers["x-n"] != "1" || first.Err != nil {
		t.Errorf("first request: %+v", first)
	}
	if second.Headers["x-n"] != "2" || second.Err == nil {
		t.Errorf("second request: %+v; want x-n 2 and an error for the dead handle", second)
	}
}
